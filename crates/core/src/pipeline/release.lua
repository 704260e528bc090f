-- release: ARGV = prefix, channel, (id, token)...
-- Hands back claimed jobs a worker will not start (its time budget ran
-- out): each one still running under that claim token goes back to queued, due now,
-- with the claim's attempt undone, and is published for another worker.
-- Returns the number released.
local channel = ARGV[2]
local now = now_ms()
local released = 0
for i = 3, #ARGV - 1, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local key = job_key(id)
  local f = redis.call('HMGET', key, 'status', 'attempts', 'claims')
  if f[1] == 'running' and f[3] == token then
    redis.call('HSET', key, 'status', 'queued', 'attempts', int(tonumber(f[2]) - 1), 'updated_at', int(now))
    redis.call('ZADD', DUE, int(now), id)
    redis.call('PUBLISH', channel, id)
    released = released + 1
  end
end
return released
