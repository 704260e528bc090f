-- redrive_all: ARGV = prefix, channel, limit
-- Re-drives up to `limit` dead-lettered jobs, oldest first, as redrive does
-- each one (queued, attempts reset, no expiry, counted for its tenant,
-- published). Entries whose record has expired are dropped.
-- Returns the number re-driven.
local channel, limit = ARGV[2], tonumber(ARGV[3])
local now = now_ms()
local count = 0
for _, id in ipairs(redis.call('ZRANGE', DEAD, 0, limit - 1)) do
  local key = job_key(id)
  local f = redis.call('HMGET', key, 'status', 'tenant')
  redis.call('ZREM', DEAD, id)
  if f[1] == 'failed' then
    redis.call('HSET', key, 'status', 'queued', 'attempts', '0', 'updated_at', int(now),
      'started_at', '', 'finished_at', '', 'error', '')
    redis.call('PERSIST', key)
    redis.call('INCR', P .. ':queued:' .. f[2])
    redis.call('ZADD', DUE, int(now), id)
    redis.call('PUBLISH', channel, id)
    count = count + 1
  end
end
return count
