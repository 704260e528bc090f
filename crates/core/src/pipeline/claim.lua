-- claim: ARGV = prefix, lease_ms, batch, message_id ('' for none), batch_bytes,
--   retention_ms
-- Candidates: the message's job, then up to `batch` ids from the due set whose
-- time has come. Overdue jobs are taken only while the inputs claimed so far
-- stay within `batch_bytes`, so one reply (and one worker instance's memory)
-- stays bounded when the backlog holds large inputs; the message's own job is
-- always a candidate. A candidate is claimed if it is queued or running and due
-- (its backoff elapsed or its lease expired): it becomes running with
-- attempts + 1 and a new claim token (`claims` + 1, never reset, not even by
-- a redrive: the fence of complete, fail and release), and is re-scored to
-- now + lease. A running job whose lease
-- expired on its last attempt is failed and dead-lettered instead.
-- Anything else (running with a live lease, backing off, finished, unknown)
-- is skipped, so a duplicate delivery does nothing.
-- Returns {expired_count, (id, tenant, type, attempt, token, input)...}
local lease_ms, batch, message_id = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local batch_bytes, retention_ms = tonumber(ARGV[5]), tonumber(ARGV[6])
local now = now_ms()

local candidates = {}
if message_id ~= '' then
  candidates[1] = message_id
end
if batch > 0 then
  local due = redis.call('ZRANGEBYSCORE', DUE, '-inf', int(now), 'LIMIT', 0, batch)
  for _, id in ipairs(due) do
    if id ~= message_id then
      candidates[#candidates + 1] = id
    end
  end
end

local out = {0}
local expired = 0
local claimed_bytes = 0
for i, id in ipairs(candidates) do
  local key = job_key(id)
  if i > 1 and claimed_bytes >= batch_bytes then
    break
  end
  local f = redis.call('HMGET', key, 'status', 'attempts', 'max_attempts', 'tenant', 'type', 'input')
  local status = f[1]
  local score = redis.call('ZSCORE', DUE, id)
  if not status then
    -- A due entry without a record: drop it.
    if score then redis.call('ZREM', DUE, id) end
  elseif score and tonumber(score) <= now and (status == 'queued' or status == 'running') then
    local attempts = tonumber(f[2]) or 0
    local max_attempts = tonumber(f[3]) or 1
    if status == 'running' and attempts >= max_attempts then
      redis.call('HSET', key, 'status', 'failed', 'updated_at', int(now), 'finished_at', int(now),
        'error', 'the worker did not finish attempt ' .. int(attempts) .. ' of ' .. int(max_attempts) .. ' within its lease')
      redis.call('ZREM', DUE, id)
      redis.call('ZADD', DEAD, int(now), id)
      retire(key, now, retention_ms, true)
      expired = expired + 1
    else
      attempts = attempts + 1
      local token = redis.call('HINCRBY', key, 'claims', 1)
      redis.call('HSET', key, 'status', 'running', 'attempts', int(attempts),
        'started_at', int(now), 'updated_at', int(now))
      redis.call('ZADD', DUE, int(now + lease_ms), id)
      out[#out + 1] = id
      out[#out + 1] = f[4]
      out[#out + 1] = f[5]
      out[#out + 1] = attempts
      out[#out + 1] = token
      out[#out + 1] = f[6]
      claimed_bytes = claimed_bytes + string.len(f[6] or '')
    end
  end
end
out[1] = expired
return out
