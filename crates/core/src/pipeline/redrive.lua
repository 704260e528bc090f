-- redrive: ARGV = prefix, channel, id
-- A failed job goes back to queued with its attempts reset, and is published.
-- Returns {'requeued', record...} | {'notfound'} | {'notfailed', status}
local channel, id = ARGV[2], ARGV[3]
local key = job_key(id)
local status = redis.call('HGET', key, 'status')
if not status then
  return {'notfound'}
end
if status ~= 'failed' then
  return {'notfailed', status}
end
local now = now_ms()
redis.call('HSET', key, 'status', 'queued', 'attempts', '0', 'updated_at', int(now),
  'started_at', '', 'finished_at', '', 'error', '')
redis.call('ZREM', DEAD, id)
redis.call('PERSIST', key)
redis.call('INCR', P .. ':queued:' .. redis.call('HGET', key, 'tenant'))
redis.call('ZADD', DUE, int(now), id)
redis.call('PUBLISH', channel, id)
return push_record({'requeued'}, key)
