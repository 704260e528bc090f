-- dead_letters: ARGV = prefix, offset, limit
-- Returns the records (14 values each) of dead-lettered jobs, newest first.
local offset, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
if limit <= 0 then return out end
local ids = redis.call('ZREVRANGE', DEAD, offset, offset + limit - 1)
for _, id in ipairs(ids) do
  local key = job_key(id)
  if redis.call('EXISTS', key) == 1 then
    push_record(out, key)
  end
end
return out
