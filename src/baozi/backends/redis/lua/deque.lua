-- deque: rotate and splice of a queue's ready items (QueueStore.rotate and QueueStore.splice).
-- ARGV: P, queue, then either
--   'rotate', n (decimal text, any size), priority key, or
--   'splice', index, delete, clamp ('1' or '0'), maxlen (-1: none), priority key, priority,
--   how many expected ids, the ids, how many payloads, then per payload: its new id, payload.
-- The priority key and priority are those of the new items (a deque's are 0's); a member that
-- carries no priority key (crafted) is moved with that key rather than left behind.
-- rotate returns how many items it moved. splice returns {'ok', removed items as pop gives them},
-- {'stale'} when the expected ids are not the head, {'index', ready count} when the index is out
-- of range, or {'full', ready count} when maxlen refuses the result; in those three cases it has
-- written nothing (but moved junk aside).
--
-- A ready member is (priority key, order, ":", id); order is '0' and 16 digits of 2^53 - 1 - seq
-- for a push to the front, '1' and 16 digits of seq for a push to the back, seq a fresh number of
-- P:seq (see push.lua). So fresh numbers put a block of items before every member of their
-- priority (front) or after every one (back): moving k items to either end is k new members,
-- whatever the queue's length. Moved items keep their ids; only their member (field m) changes.
local q, op = ARGV[2], ARGV[3]
local R = qkey(q, 'r')
local FRONT_TOP = 9007199254740991

promote(q, clock(), 1000)  -- a lease that ran out is a ready item again, in its place

-- The priority key at the start of member m ('!' ends it); nil for a member that has none.
local function priority_part(m)
  return string.match(m, '^([^:!]*!)[01]')
end

-- The member of an item of priority key pkey placed by the fresh number seq at one end.
local function placed(pkey, seq, id, front)
  if front then
    return pkey .. '0' .. string.format('%016d', FRONT_TOP - seq) .. ':' .. id
  end
  return pkey .. '1' .. string.format('%016d', seq) .. ':' .. id
end

-- The ready items at ranks first..last, checked: ids, fields (as READY_FIELDS reads them), and
-- whether all were clean (junk among them is moved aside, which shifts the ranks after it: the
-- caller then counts again).
local function checked_range(first, last)
  local ids, vals, clean = {}, {}, true
  if last < first then return ids, vals, clean end
  for _, m in ipairs(owned_call('ZRANGE', R, first, last)) do
    local v = ready_item(q, R, m)
    if v then
      ids[#ids + 1] = id_of(m)
      vals[#vals + 1] = v
    else
      clean = false
    end
  end
  return ids, vals, clean
end

-- Give a block of items, in the order they are to have, fresh members at the front or at the
-- back. Each entry: {id, old member (nil for a new item), priority key, fields (new items)}.
local function place_block(block, front)
  if #block == 0 then return end
  local first = next_seq(#block)
  local gone, added = {}, {}
  for j, x in ipairs(block) do
    -- At the front the first of the block takes the newest number, which sorts first.
    local seq = front and first + #block - j or first + j - 1
    local m = placed(x[3], seq, x[1], front)
    local h = P .. ':i:' .. x[1]
    if x[2] then
      gone[#gone + 1] = x[2]
      redis.call('HSET', h, 'm', m)
    else
      redis.call('HSET', h, 'q', q, 'm', m, 'pr', x[4][1], 'p', x[4][2], 'st', 0)
    end
    added[#added + 1] = 0
    added[#added + 1] = m
  end
  zrem_all(R, gone)
  zadd_pairs(R, added)
end

-- A block entry for a ready item already there (its fields as READY_FIELDS reads them); a member
-- that carries no priority key gets default_key.
local function kept(id, v, default_key)
  return {id, v[2], priority_part(v[2]) or default_key}
end

-- n modulo len, for n as decimal text of any size (exact: digit by digit).
local function text_mod(n, len)
  local negative = string.sub(n, 1, 1) == '-'
  local r = 0
  for d in string.gmatch(n, '%d') do r = (r * 10 + tonumber(d)) % len end
  if negative and r > 0 then r = len - r end
  return r
end

-- Rotate n steps to the right: the shorter of "the last k to the front" and "the first len - k
-- to the back". Junk met on the way is moved aside and the count taken again.
local function rotate(n, pkey)
  for _ = 1, 20 do
    local len = owned_call('ZCARD', R)
    if len == 0 then return 0 end
    local k = text_mod(n, len)
    if k == 0 then return 0 end
    local front = k <= len - k
    local ids, vals, clean
    if front then
      ids, vals, clean = checked_range(len - k, len - 1)
    else
      ids, vals, clean = checked_range(0, len - k - 1)
    end
    if clean then
      local block = {}
      for i, id in ipairs(ids) do block[i] = kept(id, vals[i], pkey) end
      place_block(block, front)
      changed(q)  -- the head or the tail is another item now
      return #block
    end
  end
  error({err = 'BAOZI_MORE junk kept shifting the ranks: run the script again'})
end

-- The splice arguments after 'splice', read.
local function splice_args()
  local a = {index = tonumber(ARGV[4]), delete = tonumber(ARGV[5]), clamp = ARGV[6] == '1',
             maxlen = tonumber(ARGV[7]), pkey = ARGV[8], prio = ARGV[9]}
  local ne = tonumber(ARGV[10])
  a.expect = {unpack(ARGV, 11, 10 + ne)}
  local at = 11 + ne
  a.new = {}
  for i = 1, tonumber(ARGV[at]) do
    local b = at + 1 + (i - 1) * 2
    a.new[i] = {ARGV[b], nil, a.pkey, {a.prio, ARGV[b + 1]}}
  end
  return a
end

-- Where the splice goes among len ready items, or nil when it is out of range.
local function splice_at(a, len)
  local index = a.index
  if index < 0 then index = index + len end
  if a.clamp then return math.max(0, math.min(index, len)) end
  if index < 0 or index > len or index + a.delete > len then return nil end
  return index
end

-- One try at a splice: the reply, or nil when junk moved aside shifted the ranks (try again).
local function splice_once(a)
  if #a.expect > 0 then
    local ids, _, clean = checked_range(0, #a.expect - 1)
    if not clean then return nil end
    for i, id in ipairs(a.expect) do
      if ids[i] ~= id then return {'stale'} end
    end
  end
  local len = owned_call('ZCARD', R)
  local index = splice_at(a, len)
  if not index then return {'index', len} end
  if a.maxlen >= 0 and len - a.delete + #a.new > a.maxlen then return {'full', len} end
  local dids, dvals, clean = checked_range(index, index + a.delete - 1)
  if not clean then return nil end
  -- The items that move with the new ones: those before the index or those after the deleted
  -- ones, whichever are fewer (none when nothing is inserted: the rest keeps its members).
  local front = index <= len - index - a.delete
  local mids, mvals = {}, {}
  if #a.new > 0 then
    if front then
      mids, mvals, clean = checked_range(0, index - 1)
    else
      mids, mvals, clean = checked_range(index + a.delete, len - 1)
    end
    if not clean then return nil end
  end
  -- Everything is read and checked: the writes.
  local out, gone = {'ok'}, {}
  for i, id in ipairs(dids) do
    local v = dvals[i]
    redis.call('DEL', P .. ':i:' .. id)
    if v[6] then unjob(q, id) end
    gone[#gone + 1] = v[2]
    put_item(out, id, v, v[8])
  end
  zrem_all(R, gone)
  local block = {}
  if front then
    for i, id in ipairs(mids) do block[#block + 1] = kept(id, mvals[i], a.pkey) end
  end
  for _, x in ipairs(a.new) do block[#block + 1] = x end
  if not front then
    for i, id in ipairs(mids) do block[#block + 1] = kept(id, mvals[i], a.pkey) end
  end
  place_block(block, front)
  if #a.new > 0 then owned_call('SADD', P .. ':queues', q) end
  if #dids > 0 or #a.new > 0 then changed(q) end
  return out
end

if op == 'rotate' then
  return rotate(ARGV[4], ARGV[5])
end
local a = splice_args()
for _ = 1, 20 do
  local reply = splice_once(a)
  if reply then return reply end
end
-- (Each try moves the junk it met aside, so this takes junk written faster than it is moved.)
error({err = 'BAOZI_MORE junk kept shifting the ranks: run the script again'})
