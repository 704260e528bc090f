-- backlog: ARGV = prefix
-- Returns {due, scheduled, dead}: jobs in the due set whose time has come,
-- every job in the due set, and every dead-lettered job.
return {
  redis.call('ZCOUNT', DUE, '-inf', int(now_ms())),
  redis.call('ZCARD', DUE),
  redis.call('ZCARD', DEAD),
}
