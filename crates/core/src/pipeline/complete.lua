-- complete: ARGV = prefix, id, token, result_blob, result_content_type, result_bytes,
--   retention_ms
-- Fenced: only the holder of the current claim token of a running job completes it.
-- Returns 1 (completed) or 0 (fenced out).
local id, token = ARGV[2], ARGV[3]
local key = job_key(id)
local f = redis.call('HMGET', key, 'status', 'claims')
if f[1] ~= 'running' or f[2] ~= token then
  return 0
end
local now = now_ms()
redis.call('HSET', key, 'status', 'succeeded', 'updated_at', int(now), 'finished_at', int(now),
  'error', '', 'result_blob', ARGV[4], 'result_content_type', ARGV[5], 'result_bytes', ARGV[6])
redis.call('ZREM', DUE, id)
retire(key, now, tonumber(ARGV[7]), false)
return 1
