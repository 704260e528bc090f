-- Shared by every pipeline script (prepended by pipeline.rs).
-- ARGV[1] is always the key prefix as a hash tag (`{jobs}`): every key is
-- built from it, so all of them are in one cluster slot. The caller declares
-- in KEYS each key it knows; the job keys a script finds in a sorted set
-- (claim, dead_letters) share the tag, hence the slot.
-- Replies are flat arrays of strings and integers only: Spin's outbound Redis
-- flattens nested arrays, and older Spin versions drop nil entries.
local P = ARGV[1]
local DUE = P .. ':due'
local DEAD = P .. ':dead'

local function job_key(id)
  return P .. ':job:' .. id
end

-- Milliseconds from the Redis server's clock: one clock for every replica.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A finished job (succeeded or dead-lettered): its record expires after the
-- retention, and dead letters older than the retention are trimmed, so
-- Redis holds a bounded window of finished jobs.
local function retire(key, now, retention_ms, dead_letter)
  -- One unfinished job fewer for its tenant (the submit limit's count).
  local tenant = redis.call('HGET', key, 'tenant')
  if tenant then
    local queued = P .. ':queued:' .. tenant
    if redis.call('DECR', queued) <= 0 then redis.call('DEL', queued) end
  end
  redis.call('PEXPIRE', key, retention_ms)
  if dead_letter then
    redis.call('ZREMRANGEBYSCORE', DEAD, '-inf', '(' .. string.format('%d', now - retention_ms))
  end
end

-- Integers as plain decimal strings (no exponent).
local function int(n)
  return string.format('%d', n)
end

local FIELDS = {'id', 'tenant', 'type', 'status', 'attempts', 'max_attempts',
  'created_at', 'updated_at', 'started_at', 'finished_at', 'error',
  'result_blob', 'result_content_type', 'result_bytes'}

-- Append the job's public fields (14 values, '' when absent) to `out`.
local function push_record(out, key)
  local values = redis.call('HMGET', key, unpack(FIELDS))
  for i = 1, #FIELDS do
    local v = values[i]
    if v == false or v == nil then v = '' end
    out[#out + 1] = v
  end
  return out
end
