-- submit: ARGV = prefix, channel, id, tenant, type, input, request_hash,
--   idempotency_key ('' for none), max_attempts, idempotency_ttl_seconds
-- Returns {'created', record...} | {'existing', record...} | {'conflict', existing_id}
local channel, id, tenant, jtype, input, hash, idem, max_attempts, idem_ttl =
  ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]

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
local key = job_key(id)
redis.call('HSET', key,
  'id', id, 'tenant', tenant, 'type', jtype, 'status', 'queued',
  'attempts', '0', 'claims', '0', 'max_attempts', max_attempts, 'input', input,
  'request_hash', hash, 'idempotency_key', idem,
  'created_at', int(now), 'updated_at', int(now), 'started_at', '', 'finished_at', '',
  'error', '', 'result_blob', '', 'result_content_type', '', 'result_bytes', '')
redis.call('ZADD', DUE, int(now), id)
if idem_key then
  redis.call('SET', idem_key, id, 'EX', tonumber(idem_ttl))
end
redis.call('PUBLISH', channel, id)
return push_record({'created'}, key)
