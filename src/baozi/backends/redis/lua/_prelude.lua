-- Shared by every script (prepended when the scripts load). ARGV[1] is the store's key prefix.
-- Keys: P:i:ID item hash; P:q:NAME:{r ready, l leased, s scheduled, j jobs, c finished counts,
-- t job totals};
-- r and l score every member 0 and sort by the member's text: r by the item's place (priority
-- key, order, ":", id), l by lease end ("%.6f" seconds, ":", id). (A small sorted set is stored
-- as a list that parses every score on insert; equal scores make that cheap.) s is scored by time.
-- P:done finished jobs by expiry; P:seq order counter; P:queues names; P:changed the channel.
--
-- An item hash holds: q queue, m its member in the ready set (priority key, order, ":", id),
-- p payload, pr priority as written, st state (0 ready, 1 leased, 2 scheduled, -1 finished),
-- du when a lease or schedule runs out, o owner, d deliveries and f failures (absent: 0); a job
-- also t task, n order number, c created, s started, fi finished, out outcome, r result, e error,
-- g progress.
local P = ARGV[1]

local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- Seconds as fixed-width text (13 digits before the point), so that text order is time order.
local function stamp(x)
  return string.format('%020.6f', x)
end

local function qkey(q, suffix)
  return P .. ':q:' .. q .. ':' .. suffix
end

local function id_of(member)
  return string.sub(member, string.find(member, ':', 1, true) + 1)
end

local function lease_member(du, id)
  return du .. ':' .. id
end

local function zrem_all(key, members)
  for i = 1, #members, 4000 do
    redis.call('ZREM', key, unpack(members, i, math.min(i + 3999, #members)))
  end
end

-- Leases that ran out and schedules that came due go back to the ready set, in their old place.
local function promote(q, now, limit)
  local ready = qkey(q, 'r')
  local L, S = qkey(q, 'l'), qkey(q, 's')
  local ended = redis.call('ZRANGEBYLEX', L, '-', '(' .. stamp(now) .. ';', 'LIMIT', 0, limit)
  for _, m in ipairs(ended) do
    local h = P .. ':i:' .. id_of(m)
    redis.call('HSET', h, 'st', 0)
    redis.call('ZADD', ready, 0, redis.call('HGET', h, 'm'))
  end
  zrem_all(L, ended)
  local due = redis.call('ZRANGEBYSCORE', S, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(due) do
    local h = P .. ':i:' .. id
    redis.call('HSET', h, 'st', 0)
    redis.call('ZADD', ready, 0, redis.call('HGET', h, 'm'))
  end
  zrem_all(S, due)
end

-- Job totals (COUNTED in backends/base.py): P:q:NAME:t maps event ':' task to how many, counted
-- by the script that makes the change. Sites add up a batch per task (count_one) and write it with
-- one HINCRBY per task (count_all).
local function count(q, task, what, n)
  redis.call('HINCRBY', qkey(q, 't'), what .. ':' .. task, n)
end
local function count_one(t, task)
  if task then t[task] = (t[task] or 0) + 1 end
end
local function count_all(q, what, t)
  for task, n in pairs(t) do count(q, task, what, n) end
end

local function changed(q)
  redis.call('PUBLISH', P .. ':changed', q)
end

local function status_of(st, out, du, now)
  if out then return out end
  if st == '0' or tonumber(du) <= now then return 'queued' end
  if st == '1' then return 'running' end
  return 'scheduled'
end

-- Everything about a job as a flat list (nil for a plain item or a missing id).
local FIELDS = {'q', 't', 'st', 'out', 'du', 'pr', 'p', 'd', 'f', 'c', 's', 'fi', 'r', 'e', 'g', 'n'}
local function job(id, now)
  local v = redis.call('HMGET', P .. ':i:' .. id, unpack(FIELDS))
  if not v[2] then return nil end
  return {id, v[1], v[2], status_of(v[3], v[4], v[5], now), v[6], v[7], v[8], v[9], v[10],
          v[11], v[12], v[13], v[14], v[15], v[16]}
end

-- Take an item that is not leased out of whichever set holds it.
local function unlist(q, id, st, h)
  if st == '0' then
    redis.call('ZREM', qkey(q, 'r'), redis.call('HGET', h, 'm'))
  elseif st == '1' then
    redis.call('ZREM', qkey(q, 'l'), lease_member(redis.call('HGET', h, 'du'), id))
  elseif st == '2' then
    redis.call('ZREM', qkey(q, 's'), id)
  end
end

-- ZADD of score, member pairs in one call per few thousand (unpack has a limit).
local function zadd_pairs(key, flat)
  for i = 1, #flat, 4000 do
    redis.call('ZADD', key, unpack(flat, i, math.min(i + 3999, #flat)))
  end
end


-- The inbox: a single ready push to the back, with no bound, is appended by the client to the list
-- P:in with plain commands (RPUSH and PUBLISH), 8 values per item: queue, id, priority key,
-- priority, payload, task ('' for a plain item), created, retried ('1' when the push was sent
-- again after a lost reply). Every script that reads or orders items first files the inbox into
-- the queues, in arrival order, so nothing can tell an item in the inbox from one filed. A big
-- inbox is filed INBOX_BATCH items per call: the script then stops with BAOZI_MORE, keeping what
-- it filed, and the client runs it again.
local INBOX_BATCH = 1000
local function ingest()
  local IN = P .. ':in'
  local e = redis.call('LRANGE', IN, 0, INBOX_BATCH * 8 - 1)
  if #e == 0 then return true end
  redis.call('LTRIM', IN, #e, -1)
  local n = #e / 8
  local first = redis.call('INCRBY', P .. ':seq', n) - n + 1
  local ready, jobs, seen, made = {}, {}, {}, {}
  for i = 0, n - 1 do
    local b = i * 8 + 1
    local q, id, task = e[b], e[b + 1], e[b + 5]
    local h = P .. ':i:' .. id
    -- A push sent again after a lost reply (and even the lost one, arriving late on its dead
    -- connection) is filed once.
    if redis.call('EXISTS', h) == 0 then
      local seq = first + i
      local m = e[b + 2] .. '1' .. string.format('%016d', seq) .. ':' .. id
      if task == '' then
        redis.call('HSET', h, 'q', q, 'm', m, 'pr', e[b + 3], 'p', e[b + 4], 'st', 0)
      else
        redis.call('HSET', h, 'q', q, 'm', m, 'pr', e[b + 3], 'p', e[b + 4], 'st', 0,
                   't', task, 'n', seq, 'c', e[b + 6])
        local J = jobs[q]
        if not J then J = {}; jobs[q] = J end
        J[#J + 1] = seq
        J[#J + 1] = id
        made[q] = made[q] or {}
        count_one(made[q], task)
      end
      local R = ready[q]
      if not R then R = {}; ready[q] = R end
      R[#R + 1] = 0
      R[#R + 1] = m
    end
  end
  for q, pairs_ in pairs(ready) do
    zadd_pairs(qkey(q, 'r'), pairs_)
    redis.call('SADD', P .. ':queues', q)
  end
  for q, pairs_ in pairs(jobs) do zadd_pairs(qkey(q, 'j'), pairs_) end
  for q, t in pairs(made) do count_all(q, 'enqueued', t) end
  return redis.call('LLEN', IN) == 0
end

-- For the scripts that read or order items: all of the inbox filed, or stop and be run again.
local function ingest_all()
  if not ingest() then
    error({err = 'BAOZI_MORE the inbox holds more items: run the script again'})
  end
end

-- Lease the first n ready items of q to owner. Returns per item: id, payload, priority,
-- deliveries, task, failures.
local function lease_head(q, owner, lease, n, now)
  if n <= 0 then return {} end
  local R = qkey(q, 'r')
  local got = redis.call('ZRANGE', R, 0, n - 1)
  if #got == 0 then return {} end
  redis.call('ZREMRANGEBYRANK', R, 0, #got - 1)
  local started, until_ = stamp(now), stamp(now + lease)
  local out, leased, took = {}, {}, {}
  for _, m in ipairs(got) do
    local id = id_of(m)
    local h = P .. ':i:' .. id
    local v = redis.call('HMGET', h, 'p', 'pr', 't', 'f', 'd')
    local d = tonumber(v[5] or 0) + 1
    redis.call('HSET', h, 'st', 1, 'o', owner, 'du', until_, 's', started, 'd', d)
    count_one(took, v[3])
    leased[#leased + 1] = 0
    leased[#leased + 1] = lease_member(until_, id)
    out[#out + 1] = id
    out[#out + 1] = v[1]
    out[#out + 1] = v[2]
    out[#out + 1] = d
    out[#out + 1] = v[3]
    out[#out + 1] = v[4]
  end
  zadd_pairs(qkey(q, 'l'), leased)
  count_all(q, 'started', took)
  return out
end

-- Workers waiting idle: P:wi holds, per owner, its free slots (one count for all its queues),
-- its lease seconds and its process's channel; P:wh how many jobs were handed to it in all;
-- P:q:NAME:w scores each owner waiting on the queue by when that runs out. A reserve that names
-- a channel sets the owner's free slots (and waits on the queue while any are free); one that
-- names none takes it off the queue.
local IDLE_TTL = 15
local function enter_idle(q, owner, free, lease, channel, now)
  local W = qkey(q, 'w')
  if channel == '' then
    redis.call('ZREM', W, owner)
    return
  end
  redis.call('HSET', P .. ':wi', owner, math.max(free, 0) .. ' ' .. lease .. ' ' .. channel)
  if free > 0 then
    redis.call('ZADD', W, now + IDLE_TTL, owner)
  else
    redis.call('ZREM', W, owner)
  end
end

-- Jobs handed to owner that it has not taken in yet, given how many it has (received).
local function in_flight(owner, received)
  local handed = tonumber(redis.call('HGET', P .. ':wh', owner) or 0)
  return math.max(handed - received, 0)
end

local function field(s)
  s = tostring(s or '')
  return #s .. ':' .. s
end

-- Hand the ready items of q to the workers waiting idle on it, leased to them, as messages on
-- their channels (queue, owner, then the items as lease_head gives them; each value written as
-- its length, ':', the value). Returns whether it handed all that is ready (so no one else
-- need hear of the change).
local function handoff(q, now)
  local W = qkey(q, 'w')
  if redis.call('EXISTS', W) == 0 then return false end
  if not ingest() or redis.call('HGET', qkey(q, 'o'), 'paused') == 'true' then return false end
  local gone = redis.call('ZRANGEBYSCORE', W, '-inf', now)
  if #gone > 0 then redis.call('ZREM', W, unpack(gone)) end
  local handed = false
  for _, owner in ipairs(redis.call('ZRANGE', W, 0, -1)) do
    local info = redis.call('HGET', P .. ':wi', owner)
    local free, lease, channel
    if info then
      free, lease, channel = string.match(info, '^(%d+) (%S+) (.+)$')
    end
    -- Only to a process that still listens (one killed does not, at once).
    free = tonumber(free or 0)
    if free == 0 then
      redis.call('ZREM', W, owner)  -- busy (its reserve on another queue took its slots)
    elseif channel and redis.call('PUBSUB', 'NUMSUB', channel)[2] > 0 then
      lease = tonumber(lease)
      local out = lease_head(q, owner, lease, free, now)
      if #out == 0 then break end
      handed = true
      enter_idle(q, owner, free - #out / 6, lease, channel, now)
      redis.call('HINCRBY', P .. ':wh', owner, #out / 6)
      local msg = {field(q), field(owner)}
      for i = 1, #out do msg[#msg + 1] = field(out[i]) end
      redis.call('PUBLISH', channel, table.concat(msg))
    else
      redis.call('ZREM', W, owner)
    end
  end
  -- Taking items from a bounded queue may let a waiting producer in.
  if handed and redis.call('HEXISTS', qkey(q, 'o'), 'maxsize') == 1 then changed(q) end
  return handed and redis.call('ZCARD', qkey(q, 'r')) == 0
end
