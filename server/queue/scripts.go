package queue

import "github.com/redis/go-redis/v9"

// The scripts share this prelude. Each script is one atomic step of the
// queue's accounting: it moves jobs between the stream, the PEL and the
// dead-letter stream and bumps the matching counter in the same step.
const luaPrelude = `
local function fieldmap(kv)
  local m = {}
  for i = 1, #kv, 2 do m[kv[i]] = kv[i + 1] end
  return m
end

-- bury moves a claimed entry to the dead-letter stream.
local function bury(stream, dead, stats, group, id, f, attempts, err)
  redis.call('XACK', stream, group, id)
  redis.call('XDEL', stream, id)
  local deadid = redis.call('XADD', dead, '*',
    'p', f['p'] or '', 't', f['t'] or string.match(id, '^(%d+)'),
    'a', attempts, 'o', f['o'] or id, 'e', err)
  redis.call('HINCRBY', stats, 'dead_lettered', 1)
  return deadid
end
`

// KEYS: stream, stats. ARGV: maxlen, payload...
// Returns the new ids, or nil when the batch does not fit under maxlen.
var enqueueScript = redis.NewScript(luaPrelude + `
local maxlen = tonumber(ARGV[1])
local n = #ARGV - 1
if maxlen > 0 and redis.call('XLEN', KEYS[1]) + n > maxlen then
  return false
end
local ids = {}
for i = 2, #ARGV do
  ids[i - 1] = redis.call('XADD', KEYS[1], '*', 'p', ARGV[i])
end
redis.call('HINCRBY', KEYS[2], 'enqueued', n)
return ids
`)

// KEYS: stream, stats. ARGV: group, id...
// Only ids still in the PEL are deleted and counted, so a job acked twice
// (by a stalled worker and by the one that reclaimed it) counts once.
var ackScript = redis.NewScript(`
local n = 0
for i = 2, #ARGV do
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    redis.call('XDEL', KEYS[1], ARGV[i])
    n = n + 1
  end
end
if n > 0 then redis.call('HINCRBY', KEYS[2], 'acked', n) end
return n
`)

// KEYS: stream, dead, stats.
// ARGV: group, consumer, min-idle ms, cursor, count, max attempts, timeout text.
// Returns {next cursor, {buried ids}, id, attempts, fields, id, attempts, fields, ...}.
var reclaimScript = redis.NewScript(luaPrelude + `
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local max = tonumber(ARGV[6])
local buried = {}
local out = {r[1], buried}
local redelivered = 0
for _, e in ipairs(r[2]) do
  if e and e[2] then
    local id = e[1]
    local pend = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
    local f = fieldmap(e[2])
    local attempts = tonumber(f['a'] or '0') + pend[1][4]
    if attempts > max then
      local err = 'gave up after ' .. (attempts - 1) .. ' deliveries without Ack or Fail (visibility timeout ' .. ARGV[7] .. ')'
      if f['e'] then err = err .. '; last error: ' .. f['e'] end
      table.insert(buried, bury(KEYS[1], KEYS[2], KEYS[3], ARGV[1], id, f, attempts - 1, err))
    else
      table.insert(out, id)
      table.insert(out, attempts)
      table.insert(out, e[2])
      redelivered = redelivered + 1
    end
  end
end
if redelivered > 0 then redis.call('HINCRBY', KEYS[3], 'retried', redelivered) end
return out
`)

// Fail outcomes, returned as the first element of failScript's reply.
const (
	failNotClaimed = 0
	failRetried    = 1
	failBuried     = 2
)

// KEYS: stream, dead, stats. ARGV: group, consumer ("" = any), id,
// max attempts, retry ("1"/"0"), error text.
// Returns {outcome, new id}.
var failScript = redis.NewScript(luaPrelude + `
local group, id = ARGV[1], ARGV[3]
local pend
if ARGV[2] ~= '' then
  pend = redis.call('XPENDING', KEYS[1], group, id, id, 1, ARGV[2])
else
  pend = redis.call('XPENDING', KEYS[1], group, id, id, 1)
end
if #pend == 0 then return {0, ''} end
local entry = redis.call('XRANGE', KEYS[1], id, id)
if #entry == 0 then
  redis.call('XACK', KEYS[1], group, id)
  return {0, ''}
end
local f = fieldmap(entry[1][2])
local attempts = tonumber(f['a'] or '0') + pend[1][4]
if ARGV[5] == '1' and attempts < tonumber(ARGV[4]) then
  redis.call('XACK', KEYS[1], group, id)
  redis.call('XDEL', KEYS[1], id)
  local newid = redis.call('XADD', KEYS[1], '*',
    'p', f['p'] or '', 'a', attempts, 't', f['t'] or string.match(id, '^(%d+)'),
    'o', f['o'] or id, 'e', ARGV[6])
  redis.call('HINCRBY', KEYS[3], 'retried', 1)
  return {1, newid}
end
return {2, bury(KEYS[1], KEYS[2], KEYS[3], group, id, f, attempts, ARGV[6])}
`)

// KEYS: stream, dead, stats. ARGV: limit (0 = the ids that follow), id...
// Moves dead letters back to the stream with their attempts reset (an id
// given twice moves once). Returns how many moved.
var replayScript = redis.NewScript(luaPrelude + `
local entries = {}
if tonumber(ARGV[1]) > 0 then
  entries = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', ARGV[1])
else
  local seen = {}
  for i = 2, #ARGV do
    local r = redis.call('XRANGE', KEYS[2], ARGV[i], ARGV[i])
    if #r > 0 and not seen[r[1][1]] then
      seen[r[1][1]] = true
      table.insert(entries, r[1])
    end
  end
end
for _, e in ipairs(entries) do
  local f = fieldmap(e[2])
  redis.call('XADD', KEYS[1], '*', 'p', f['p'] or '', 't', f['t'] or string.match(e[1], '^(%d+)'), 'o', f['o'] or e[1])
  redis.call('XDEL', KEYS[2], e[1])
end
if #entries > 0 then redis.call('HINCRBY', KEYS[3], 'replayed', #entries) end
return #entries
`)

// KEYS: stream, dead, stats. ARGV: group.
// Returns {xlen, pending, dead, enqueued, acked, retried, dead_lettered, replayed}
// from one atomic snapshot.
var statsScript = redis.NewScript(`
local xlen = redis.call('XLEN', KEYS[1])
local pending = 0
local p = redis.pcall('XPENDING', KEYS[1], ARGV[1])
if type(p) == 'table' and not p['err'] then pending = p[1] end
local out = {xlen, pending, redis.call('XLEN', KEYS[2])}
local c = redis.call('HMGET', KEYS[3], 'enqueued', 'acked', 'retried', 'dead_lettered', 'replayed')
for i = 1, 5 do out[#out + 1] = tonumber(c[i]) or 0 end
return out
`)

// KEYS: meta, the single-partition stream, its dead letters. ARGV:
// partitions. Returns the partition count the queue has (setting it to
// ARGV[1] when none is recorded), or -1 when a partitioned layout is asked
// for while the single-partition stream still holds jobs.
var metaScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'partitions')
if cur then return tonumber(cur) end
local n = tonumber(ARGV[1])
if n > 1 and (redis.call('XLEN', KEYS[2]) > 0 or redis.call('XLEN', KEYS[3]) > 0) then
  return -1
end
redis.call('HSET', KEYS[1], 'partitions', n)
return n
`)
