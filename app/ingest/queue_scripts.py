"""The queue buffer's Lua scripts: each is one atomic step on Redis (``app/queue_buffer.py``
says what the keys hold). Redis runs a script alone and, with ``appendfsync always``, has it
on disk before it answers, so no step is ever half done, whatever dies when.

A consumer (one drain job) holds at most one batch at a time: it acknowledges a batch before
it takes another, so a consumer's pending entries are always exactly one whole batch — the
unit a reclaim moves and a receipt names.
"""

# Lua's unpack() takes a few thousand values at most: ids go to XACK/XDEL/XCLAIM in chunks.
_CHUNKS = """
local function each_chunk(ids, call)
  for i = 1, #ids, 500 do
    call(unpack(ids, i, math.min(i + 499, #ids)))
  end
end
"""

# KEYS: stream, depth, reservation ('' for none), drainer leases...
# ARGV: group, points, payload, max points, reservation record, reservation ttl s,
#       lease ms, job id prefix
APPEND = """
local reserve = KEYS[3] ~= ''
if reserve then
  local earlier = redis.call('GET', KEYS[3])
  if earlier then return {'replay', earlier} end
end
local n = tonumber(ARGV[2])
local started = {'ok'}
if n > 0 then
  local depth = tonumber(redis.call('GET', KEYS[2]) or '0')
  if depth + n > tonumber(ARGV[4]) then return {'full', depth} end
  if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
  end
  local id = redis.call('XADD', KEYS[1], '*', 'n', ARGV[2], 'p', ARGV[3])
  redis.call('INCRBY', KEYS[2], n)
  for i = 4, #KEYS do
    local job = ARGV[8] .. id .. '.' .. (i - 4)
    if redis.call('SET', KEYS[i], job, 'NX', 'PX', ARGV[7]) then
      table.insert(started, i - 4)
      table.insert(started, job)
    end
  end
end
if reserve then redis.call('SET', KEYS[3], ARGV[5], 'EX', ARGV[6]) end
return started
"""

# A drain's next step. KEYS: stream, its lease, stats.
# ARGV: group, consumer (the job id), lease ms, max points, claim idle ms, release ('1':
# give the slot up if there is nothing to do).
# → {'lost'} (the slot is another job's), {'idle'} (nothing now, slot kept), {'done'}
#   (nothing to do: slot released), or
#   {'read'|'reclaimed', first id, entries, points, payload, deliveries}.
NEXT_BATCH = (
    _CHUNKS
    + """
local stream, group, me = KEYS[1], ARGV[1], ARGV[2]
local owner = redis.call('GET', KEYS[2])
if owner and owner ~= me then return {'lost'} end

local function idle_consumer_gone(name)
  if #redis.call('XPENDING', stream, group, '-', '+', 1, name) == 0 then
    redis.call('XGROUP', 'DELCONSUMER', stream, group, name)
  end
end

local function batch(kind, ids, entries, deliveries)
  local parts, points = {}, 0
  for i, entry in ipairs(entries) do
    points = points + tonumber(entry[2][2])
    parts[i] = entry[2][4]
  end
  return {kind, ids[1], #ids, points, table.concat(parts, '\\n'), deliveries}
end

-- Take a consumer's whole batch over (this job's own, when RQ runs a job id again).
local function take(owner)
  local held = redis.call('XPENDING', stream, group, '-', '+', 10000000, owner)
  if #held == 0 then return nil end
  local ids, deliveries, entries = {}, 0, {}
  for i, p in ipairs(held) do
    ids[i] = p[1]
    deliveries = math.max(deliveries, p[4])
  end
  each_chunk(ids, function(...)
    for _, e in ipairs(redis.call('XCLAIM', stream, group, me, 0, ...)) do
      table.insert(entries, e)
    end
  end)
  if owner ~= me then idle_consumer_gone(owner) end
  redis.call('HINCRBY', KEYS[3], 'reclaimed_entries', #ids)
  return batch('reclaimed', ids, entries, deliveries + 1)
end

-- A consumer idle past the claim time died (or stalled).
local function reclaim()
  local stale = redis.call('XPENDING', stream, group, 'IDLE', ARGV[5], '-', '+', 1)
  if #stale == 0 then return nil end
  return take(stale[1][2])
end

-- Entries nobody has read yet, up to the batch's points (at least one entry).
local function read()
  local last = '0-0'
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local info = {}
    for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
    if info['name'] == group then last = info['last-delivered-id'] end
  end
  local limit = tonumber(ARGV[4])
  local peek = redis.call('XRANGE', stream, '(' .. last, '+', 'COUNT', limit)
  local count, points = 0, 0
  for _, e in ipairs(peek) do
    local n = tonumber(e[2][2])
    if count > 0 and points + n > limit then break end
    count, points = count + 1, points + n
  end
  if count == 0 then return nil end
  local got = redis.call('XREADGROUP', 'GROUP', group, me, 'COUNT', count, 'STREAMS', stream, '>')
  local ids = {}
  for i, e in ipairs(got[1][2]) do ids[i] = e[1] end
  return batch('read', ids, got[1][2], 1)
end

if redis.call('EXISTS', stream) == 1 then
  redis.call('SET', KEYS[2], me, 'PX', ARGV[3])
  local found = take(me) or reclaim() or read()
  if found then return found end
  if ARGV[6] ~= '1' then return {'idle'} end
  idle_consumer_gone(me)
end
redis.call('DEL', KEYS[2])
return {'done'}
"""
)

# A batch applied (or given up): acknowledge and delete its entries, in the same step count
# it drained and keep its refused points. Only the consumer still holding the batch does it.
# KEYS: stream, depth, stats, failed. ARGV: group, consumer, first id, entries, points,
# points written, refused points, refused payload.
# → entries acknowledged (0: another consumer took the batch over meanwhile).
ACK = (
    _CHUNKS
    + """
local stream, group = KEYS[1], ARGV[1]
local held = redis.call('XPENDING', stream, group, '-', '+', tonumber(ARGV[4]) + 1, ARGV[2])
if #held == 0 then return 0 end
if #held ~= tonumber(ARGV[4]) or held[1][1] ~= ARGV[3] then
  return redis.error_reply('ERR the pending batch is not the one applied')
end
local ids = {}
for i, p in ipairs(held) do ids[i] = p[1] end
each_chunk(ids, function(...) redis.call('XACK', stream, group, ...) end)
each_chunk(ids, function(...) redis.call('XDEL', stream, ...) end)
redis.call('DECRBY', KEYS[2], ARGV[5])
redis.call('HINCRBY', KEYS[3], 'drained_points', ARGV[6])
if tonumber(ARGV[7]) > 0 then
  redis.call('XADD', KEYS[4], '*', 'n', ARGV[7], 'p', ARGV[8])
  redis.call('HINCRBY', KEYS[3], 'failed_points', ARGV[7])
end
return #held
"""
)

# Start drainers for the free slots when there is work: entries nobody has read, or a batch
# idle past the claim time. KEYS: stream, drainer leases... ARGV: group, claim idle ms,
# lease ms, job id prefix. → {slot, job id, ...} of the slots taken.
ARM = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local unread = redis.call('XLEN', KEYS[1]) - redis.call('XPENDING', KEYS[1], ARGV[1])[1]
if unread <= 0 then
  local stale = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[2], '-', '+', 1)
  if #stale == 0 then return {} end
end
local started = {}
for i = 2, #KEYS do
  local job = ARGV[4] .. (i - 2)
  if redis.call('SET', KEYS[i], job, 'NX', 'PX', ARGV[3]) then
    table.insert(started, i - 2)
    table.insert(started, job)
  end
end
return started
"""

# Move one failed-points record back into the stream (once: the record is deleted in the same
# step). KEYS: stream, depth, stats, failed. ARGV: group, record id, points, payload.
REQUEUE = """
if redis.call('XDEL', KEYS[4], ARGV[2]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
end
redis.call('XADD', KEYS[1], '*', 'n', ARGV[3], 'p', ARGV[4])
redis.call('INCRBY', KEYS[2], ARGV[3])
redis.call('HINCRBY', KEYS[3], 'failed_points', -tonumber(ARGV[3]))
return 1
"""

# What /ready, /metrics and `flask queue status` show. KEYS: stream, depth, stats, leases...
# ARGV: group. → {entries, pending entries, oldest id or nil, server time s, µs, points,
#   drainers, stats as a flat list}
STATE = """
local entries, pending, oldest = 0, 0, false
if redis.call('EXISTS', KEYS[1]) == 1 then
  entries = redis.call('XLEN', KEYS[1])
  pending = redis.call('XPENDING', KEYS[1], ARGV[1])[1]
  local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
  if #first > 0 then oldest = first[1][1] end
end
local drainers = 0
for i = 4, #KEYS do drainers = drainers + redis.call('EXISTS', KEYS[i]) end
local now = redis.call('TIME')
return {entries, pending, oldest, now[1], now[2], redis.call('GET', KEYS[2]) or '0', drainers,
        redis.call('HGETALL', KEYS[3])}
"""
