-- defer: ARGV = prefix, id, token, delay_ms, error
-- Puts a claimed job back without spending an attempt: for failures that are
-- not the job's (the result storage refused the credentials). Fenced like
-- complete: the job must still be running under `token`. It goes back to
-- queued with the claim's attempt undone, due after delay_ms, its error set.
-- Returns 1 (deferred) or 0 (fenced out).
local id, token, delay, err = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local key = job_key(id)
local f = redis.call('HMGET', key, 'status', 'attempts', 'claims')
if f[1] ~= 'running' or f[3] ~= token then
  return 0
end
local now = now_ms()
local attempts = math.max(0, tonumber(f[2]) - 1)
redis.call('HSET', key, 'status', 'queued', 'attempts', int(attempts), 'updated_at', int(now), 'error', err)
redis.call('ZADD', DUE, int(now + delay), id)
return 1
