-- sweep: ARGV = prefix, channel, batch
-- Publishes the ids of up to `batch` jobs whose time has come (queued and
-- due, or running with an expired lease), oldest first. Returns the count.
local channel, batch = ARGV[2], tonumber(ARGV[3])
local due = redis.call('ZRANGEBYSCORE', DUE, '-inf', int(now_ms()), 'LIMIT', 0, batch)
for _, id in ipairs(due) do
  redis.call('PUBLISH', channel, id)
end
return #due
