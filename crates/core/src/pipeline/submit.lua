-- submit: ARGV = prefix, channel, id, tenant, type, input, request_hash,
--   idempotency_key ('' for none), max_attempts, idempotency_ttl_seconds,
--   rate_per_second, burst, max_queued (0: no such limit)
-- The tenant's limits are checked after the idempotency check (a replay is
-- free): at most max_queued unfinished jobs ({prefix}:queued:{tenant}, kept
-- by submit, the scripts that finish a job, and redrive), and a token bucket
-- of `burst` tokens refilled at rate_per_second ({prefix}:bucket:{tenant}).
-- Returns {'created', record...} | {'existing', record...} | {'conflict', existing_id}
--   | {'limited', 'queued'|'rate', retry_after_ms, limit, remaining, reset_seconds}
local channel, id, tenant, jtype, input, hash, idem, max_attempts, idem_ttl =
  ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local rate, burst, max_queued = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])

local idem_key = nil
if idem ~= '' then
  idem_key = P .. ':idem:' .. tenant .. ':' .. idem
  local existing = redis.call('GET', idem_key)
  if existing then
    local existing_hash = redis.call('HGET', job_key(existing), 'request_hash')
    if existing_hash == hash then
      return push_record({'existing'}, job_key(existing))
    elseif existing_hash then
      return {'conflict', existing}
    end
    -- The job the key pointed at is gone: the key is free again.
  end
end

local now = now_ms()
local queued_key = P .. ':queued:' .. tenant
if max_queued > 0 then
  local queued = tonumber(redis.call('GET', queued_key) or '0')
  if queued >= max_queued then
    return {'limited', 'queued', 1000, max_queued, 0, 1}
  end
end
if rate > 0 then
  local bucket_key = P .. ':bucket:' .. tenant
  local b = redis.call('HMGET', bucket_key, 'tokens', 'at')
  local tokens, at = tonumber(b[1]) or burst, tonumber(b[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
  if tokens < 1 then
    local wait_ms = math.ceil((1 - tokens) * 1000 / rate)
    local full_s = math.ceil((burst - tokens) / rate)
    return {'limited', 'rate', wait_ms, burst, 0, full_s}
  end
  tokens = tokens - 1
  redis.call('HSET', bucket_key, 'tokens', string.format('%.6f', tokens), 'at', int(now))
  redis.call('PEXPIRE', bucket_key, math.ceil(burst * 1000 / rate) + 1000)
end

local key = job_key(id)
redis.call('HSET', key,
  'id', id, 'tenant', tenant, 'type', jtype, 'status', 'queued',
  'attempts', '0', 'claims', '0', 'max_attempts', max_attempts, 'input', input,
  'request_hash', hash, 'idempotency_key', idem,
  'created_at', int(now), 'updated_at', int(now), 'started_at', '', 'finished_at', '',
  'error', '', 'result_blob', '', 'result_content_type', '', 'result_bytes', '')
redis.call('ZADD', DUE, int(now), id)
redis.call('INCR', queued_key)
if idem_key then
  redis.call('SET', idem_key, id, 'EX', tonumber(idem_ttl))
end
redis.call('PUBLISH', channel, id)
return push_record({'created'}, key)
