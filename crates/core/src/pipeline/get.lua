-- get: ARGV = prefix, id. Returns {} or the record (14 values).
local key = job_key(ARGV[2])
if redis.call('EXISTS', key) == 0 then
  return {}
end
return push_record({}, key)
