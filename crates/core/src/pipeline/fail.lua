-- fail: ARGV = prefix, id, token, error, retryable ('1'/'0'), retry_backoff_ms,
--   retention_ms
-- Fenced like complete. A retryable failure with attempts left goes back to
-- queued, due after retry_backoff_ms * 2^(attempts - 1) (at most one hour);
-- otherwise the job fails and is dead-lettered.
-- Returns {'queued', due_at} | {'failed'} | {'fenced'}
local id, token, err, retryable, backoff = ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local key = job_key(id)
local f = redis.call('HMGET', key, 'status', 'attempts', 'max_attempts', 'claims')
if f[1] ~= 'running' or f[4] ~= token then
  return {'fenced'}
end
local now = now_ms()
local attempts, max_attempts = tonumber(f[2]), tonumber(f[3])
if retryable == '1' and attempts < max_attempts then
  local delay = math.min(backoff * math.pow(2, attempts - 1), 3600000)
  local due_at = now + math.floor(delay)
  redis.call('HSET', key, 'status', 'queued', 'updated_at', int(now), 'error', err)
  redis.call('ZADD', DUE, int(due_at), id)
  return {'queued', due_at}
end
redis.call('HSET', key, 'status', 'failed', 'updated_at', int(now), 'finished_at', int(now), 'error', err)
redis.call('ZREM', DUE, id)
redis.call('ZADD', DEAD, int(now), id)
retire(key, now, tonumber(ARGV[7]), true)
return {'failed'}
