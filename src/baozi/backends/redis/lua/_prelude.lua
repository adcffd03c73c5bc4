-- Shared by every script (prepended when the scripts load). ARGV[1] is the store's key prefix.
-- Keys: P:i:ID item hash; P:q:NAME:{r ready, l leased, s scheduled, a waiting (ids, score 0),
-- j jobs, c finished counts, t job totals, p publish-pending marks (job ids, scored by the
-- mark's time; since layout 4)};
-- r and l score every member 0 and sort by the member's text: r by the item's place (priority
-- key, order, ":", id), l by lease end ("%.6f" seconds, ":", id). (A small sorted set is stored
-- as a list that parses every score on insert; equal scores make that cheap.) s is scored by time.
-- P:done finished jobs by expiry (one kept until forgotten is not in it); P:seq order counter;
-- P:queues names; P:changed the channel. Workflows: P:uq:SHA1 the ids of jobs that may hold the
-- unique key whose SHA-1 it is; P:ch:ID the jobs that depend on ID (ids scored by order number);
-- P:pw:ID the jobs waiting job ID still waits for.
--
-- An item hash holds: q queue, m its member in the ready set (priority key, order, ":", id),
-- p payload, pr priority as written, st state (0 ready, 1 leased, 2 scheduled, 3 waiting for
-- the jobs it depends on, -1 finished), du when a lease or schedule runs out (for a waiting job:
-- when its delay ends, if it has one), o owner, d deliveries and f failures (absent: 0); a job
-- also t task, n order number, c created, s started, fi finished, out outcome, r result, e error,
-- g progress; and optionally u unique key, uw unique_while, uf unique_for (with u), pa the jobs
-- it depends on (ids joined by spaces, in order), od its on_dependency_failure (absent: cancel),
-- hc '1' once a job depends on it. (These came with layout 2, whose step writes only the
-- version: a store without them reads as one whose jobs have no keys and no dependencies.)
-- A job's w is the owner of its last run that ended (settled, or cancelled while leased);
-- it came with layout 5, whose step writes only the version too.
-- The workflow functions are in _prelude_flows.lua, which follows this file.
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

-- The id after the first ':' of a set member; nil for a member without one (junk).
local function id_of(member)
  local at = string.find(member, ':', 1, true)
  if not at then return nil end
  return string.sub(member, at + 1)
end

local function lease_member(du, id)
  return du .. ':' .. id
end

-- Junk. Anyone who can write to the server can write junk into these keys, so a script checks
-- every record it reads before it writes anything, and moves one it cannot use aside, intact:
-- an item hash is renamed to P:junk:i:ID; a stray value (of the inbox, a set, a hash's field) is
-- appended to the list P:junk:REST, where P:REST was its key. The hash P:junk names each
-- quarantine key with the reason. Each move is also noted in P:junk:new, which the script's
-- reply carries back (see finish) so that the client logs it, once.
local JUNK_NEW = P .. ':junk:new'
local JUNK_MARK = '\0baozi:junk\0'

local function show(x)
  if not x then return 'missing' end
  if type(x) ~= 'string' then return tostring(x) end
  if #x > 40 then x = string.sub(x, 1, 40) .. '...' end
  return string.format('%q', x)
end

local junked = false  -- this run moved something aside, or found moves not yet reported

local function note_junk(key, aside, reason)
  junked = true
  redis.call('HSET', P .. ':junk', aside, key .. ': ' .. reason)
  redis.call('RPUSH', JUNK_NEW, key, aside, reason)
end

local function junk_values(key, values, reason)
  local aside = P .. ':junk:' .. string.sub(key, #P + 2)
  local kind = redis.call('TYPE', aside).ok
  if kind ~= 'list' and kind ~= 'none' then
    aside = aside .. ':' .. redis.call('INCR', P .. ':junk:n')
  end
  for i = 1, #values, 4000 do
    redis.call('RPUSH', aside, unpack(values, i, math.min(i + 3999, #values)))
  end
  note_junk(key, aside, reason)
end

local function junk_value(key, value, reason)
  junk_values(key, {value}, reason)
end

-- A command on one of baozi's sorted sets or sets. A key of another type in its place (junk:
-- anyone can write any key) is moved aside, intact, and the command runs on the key anew, so a
-- script never stops half way through its writes (Redis would not roll back the first ones).
local function owned_call(command, key, ...)
  local reply = redis.pcall(command, key, ...)
  if type(reply) == 'table' and reply.err then
    if not string.find(reply.err, 'WRONGTYPE', 1, true) then error(reply) end
    local aside = P .. ':junk:' .. string.sub(key, #P + 2) .. ':' .. redis.call('INCR', P .. ':junk:n')
    redis.call('RENAME', key, aside)
    note_junk(key, aside, 'a ' .. redis.call('TYPE', aside).ok .. ' where baozi keeps another kind')
    return redis.call(command, key, ...)
  end
  return reply
end

local function zrem_all(key, members)
  for i = 1, #members, 4000 do
    owned_call('ZREM', key, unpack(members, i, math.min(i + 3999, #members)))
  end
end

-- A hash field moved aside: its name, then its value, onto the quarantine list of the hash.
local function junk_field(key, name, reason)
  local value = redis.call('HGET', key, name)
  redis.call('HDEL', key, name)
  junk_values(key, {name, value or ''}, 'field ' .. show(name) .. ': ' .. reason)
end

local function is_count(x)
  return not x or (string.match(x, '^%d+$') ~= nil and #x < 16)
end

local function is_stamp(x)
  return type(x) == 'string' and string.match(x, '^%d+%.?%d*$') ~= nil
end

-- A priority as the client writes it (repr of an int or a float, or 'x' and the hex of an
-- encoded str, bytes or tuple), which it reads back.
local function is_priority(x)
  if type(x) ~= 'string' then return false end
  return string.match(x, '^x[0-9a-f]+$') ~= nil or string.match(x, '^%-?%d+$') ~= nil or string.match(x, '^%-?%d+%.%d+$') ~= nil
    or string.match(x, '^%-?%d+%.?%d*e[%+%-]%d+$') ~= nil
    or x == 'inf' or x == '-inf' or x == 'nan'
end

-- Text the client decodes (queue and task names): UTF-8, by its byte patterns.
local function is_utf8(x)
  if not string.find(x, '[\128-\255]') then return true end  -- ASCII: the usual case, in C
  local i, n = 1, #x
  while i <= n do
    local c = string.byte(x, i)
    local k
    if c < 0x80 then k = 0 elseif c >= 0xC2 and c < 0xE0 then k = 1
    elseif c >= 0xE0 and c < 0xF0 then k = 2 elseif c >= 0xF0 and c < 0xF5 then k = 3
    else return false end
    for j = i + 1, i + k do
      local b = string.byte(x, j)
      if not b or b < 0x80 or b > 0xBF then return false end
    end
    i = i + k + 1
  end
  return true
end

local ID_PATTERN = '^[%w_%-]+$'

-- Seconds as the client writes them (repr of a float: 'inf' too), not negative.
local function is_seconds(x)
  local n = type(x) == 'string' and tonumber(x)
  return n and n == n and n >= 0
end

-- Whether field name of an item may hold x (false: the field is missing). The prelude runs with
-- every script, so this is one function rather than a table of them.
local function field_ok(name, x)
  if name == 'q' then return x and x ~= '' and is_utf8(x) end
  if name == 'p' then return x ~= false end
  if name == 'pr' then return is_priority(x) end
  if name == 'st' then return x == '0' or x == '1' or x == '2' or x == '3' or x == '-1' end
  if name == 'd' or name == 'f' or name == 'n' then return is_count(x) end
  if name == 'du' or name == 'c' or name == 's' or name == 'fi' then
    return not x or is_stamp(x)
  end
  if name == 'out' then
    return not x or x == 'succeeded' or x == 'failed' or x == 'cancelled'
  end
  if name == 't' or name == 'u' then return not x or is_utf8(x) end
  if name == 'uw' then
    return not x or x == 'queued_or_running' or x == 'queued' or x == 'running'
  end
  if name == 'od' then return not x or x == 'cancel' or x == 'run' or x == 'fail' end
  if name == 'uf' then return not x or is_seconds(x) end
  if name == 'pa' then return not x or string.match(x, '^[%w_%- ]*$') ~= nil end
  return true  -- o, r, e, g, hc: any text
end

-- The fields of item id as a table by name, and why it cannot be used (nil when it can): a
-- missing or wrongly typed hash, a field that fails its check, an m of another id, a lease or
-- a schedule with no end. The fields asked for are the ones a script uses.
local function read_item(id, fields)
  if not id or not string.match(id, ID_PATTERN) then return {}, 'not an item id' end
  local got = redis.pcall('HMGET', P .. ':i:' .. id, unpack(fields))
  if got.err then return {}, 'not a hash' end
  local v, any = {}, false
  for i, name in ipairs(fields) do
    v[name] = got[i]
    any = any or got[i] ~= false
  end
  if not any and redis.call('EXISTS', P .. ':i:' .. id) == 0 then return v, 'no item hash' end
  for _, name in ipairs(fields) do
    if name == 'm' then
      if not v.m or id_of(v.m) ~= id then return v, 'field m is ' .. show(v.m) end
    elseif not field_ok(name, v[name]) then
      return v, 'field ' .. name .. ' is ' .. show(v[name])
    elseif name == 'du' and (v.st == '1' or v.st == '2') and not v.du then
      return v, 'a lease or schedule with no end (du)'
    elseif name == 'out' and v.st == '-1' and not v.out then
      return v, 'finished with no outcome (out)'
    end
  end
  return v, nil
end

-- A job of queue q whose record is gone (its hash deleted): out of the queue's jobs, and its
-- publish-pending mark with it.
local function unjob(q, id)
  owned_call('ZREM', qkey(q, 'j'), id)
  owned_call('ZREM', qkey(q, 'p'), id)
end

-- Move item id aside (see above) and take it out of every set of queue q that names it;
-- key, member: the set it was found in and its member there. Without a hash, the member goes.
local function junk_item(id, reason, q, key, member)
  local h = P .. ':i:' .. (id or '')
  if key and member then owned_call('ZREM', key, member) end
  if not id or redis.call('EXISTS', h) == 0 then
    if key and member then junk_value(key, member, reason) end
    return
  end
  local own = redis.pcall('HMGET', h, 'm', 'du', 'q')
  if own.err then own = {} end
  for _, queue in ipairs({q, own[3]}) do
    if queue and queue ~= '' then
      -- (only its own member: a crafted m may name another item's)
      if own[1] and id_of(own[1]) == id then owned_call('ZREM', qkey(queue, 'r'), own[1]) end
      if own[2] then owned_call('ZREM', qkey(queue, 'l'), own[2] .. ':' .. id) end
      owned_call('ZREM', qkey(queue, 's'), id)
      owned_call('ZREM', qkey(queue, 'a'), id)
      unjob(queue, id)
    end
  end
  owned_call('ZREM', P .. ':done', id)
  local aside = P .. ':junk:i:' .. id
  if redis.call('EXISTS', aside) == 1 then
    aside = aside .. ':' .. redis.call('INCR', P .. ':junk:n')
  end
  redis.call('RENAME', h, aside)
  note_junk(h, aside, reason)
end

-- HINCRBY of a count; a field holding no integer is moved aside first (it counts from 0).
local function add_count(key, name, n)
  local old = redis.pcall('HGET', key, name)
  if type(old) == 'table' then return end  -- not a hash: left to whoever made it
  if old and not string.match(old, '^%-?%d+$') then junk_field(key, name, 'not a count') end
  redis.call('HINCRBY', key, name, n)
end

-- The next n numbers of the order counter; junk in it is moved aside and the count goes on
-- from the clock in microseconds (above any count so far, so the order stays).
local function next_seq(n)
  local key = P .. ':seq'
  local old = redis.pcall('GET', key)
  if type(old) == 'table' or (old and not string.match(old, '^%d+$')) then
    local aside = P .. ':junk:seq:' .. redis.call('INCR', P .. ':junk:n')
    redis.call('RENAME', key, aside)
    note_junk(key, aside, 'not a count')
    local t = redis.call('TIME')
    redis.call('SET', key, t[1] .. string.format('%06d', tonumber(t[2])))
  end
  return redis.call('INCRBY', key, n) - n + 1
end

-- The script's reply as it is or, when something was moved aside, as JUNK_MARK, the number of
-- moves, each as key, quarantine key, reason, then the reply. (Moves a run could not report,
-- because it stopped with an error, are reported by the next script that files the inbox.)
local function finish(reply)
  if not junked then return reply end
  local notes = redis.call('LRANGE', JUNK_NEW, 0, -1)
  redis.call('DEL', JUNK_NEW)
  local out = {JUNK_MARK, #notes / 3}
  for _, x in ipairs(notes) do out[#out + 1] = x end
  out[#out + 1] = reply
  return out
end

-- An item of q that a set member points to, checked: its fields, or nil when it was junk (moved
-- aside) or the member pointed to no such item (the member moved aside). st: the state the
-- set says it is in.
local function member_item(q, key, member, id, st, fields)
  local v, why = read_item(id, fields)
  if why then
    junk_item(id, why, q, key, member)
    return nil
  end
  if v.q ~= q or v.st ~= st or (st == '0' and v.m ~= member)
      or (st == '1' and lease_member(v.du, id) ~= member) then
    owned_call('ZREM', key, member)
    junk_value(key, member, 'names item ' .. id .. ', which is not there in this state')
    return nil
  end
  return v
end

-- The fields settle and lease read of an item, in this order.
local OWN = {'o', 'st', 'm', 'q', 'f', 'du', 't', 'd', 'uf', 'hc'}

-- Item id as OWN reads it when it is owner's, in q, in state 0 or 1 (nil when it is not: left
-- as it is), and why it cannot be used (nil when it can): what those scripts compute with.
local function read_own(id, owner, q)
  if not string.match(id, ID_PATTERN) then return nil end
  local v = redis.pcall('HMGET', P .. ':i:' .. id, unpack(OWN))
  if v.err then return nil, 'not a hash' end
  if v[1] ~= owner or v[4] ~= q or (v[2] ~= '0' and v[2] ~= '1') then return nil end
  if not v[3] or id_of(v[3]) ~= id then return nil, 'field m is ' .. show(v[3]) end
  if v[2] == '1' and not is_stamp(v[6]) then return nil, 'field du is ' .. show(v[6]) end
  if not is_count(v[5]) then return nil, 'field f is ' .. show(v[5]) end
  if not is_count(v[8]) then return nil, 'field d is ' .. show(v[8]) end
  if v[9] and not is_seconds(v[9]) then return nil, 'field uf is ' .. show(v[9]) end
  return v
end

-- A ready member m of q, checked: its item's fields as READY_FIELDS reads them, or nil when it
-- or its item was junk (moved aside). The usual case is checked here, field by field; anything
-- else is left to member_item.
local READY_FIELDS = {'q', 'm', 'st', 'p', 'pr', 't', 'f', 'd'}

-- Append an item to a reply as reserve, pop and items give it: id, payload, priority,
-- deliveries (d: the count to report), task, failures; v as READY_FIELDS reads the item.
local function put_item(out, id, v, d)
  out[#out + 1] = id
  out[#out + 1] = v[4]
  out[#out + 1] = v[5]
  out[#out + 1] = d
  out[#out + 1] = v[6]
  out[#out + 1] = v[7]
end
local function ready_item(q, R, m)
  local id = id_of(m)
  local v
  if id and string.match(id, ID_PATTERN) then
    v = redis.pcall('HMGET', P .. ':i:' .. id, unpack(READY_FIELDS))
  end
  if not v or v.err or v[1] ~= q or v[2] ~= m or v[3] ~= '0' then
    local r = member_item(q, R, m, id, '0', READY_FIELDS)
    return r and {r.q, r.m, r.st, r.p, r.pr, r.t, r.f, r.d}
  end
  local why
  if not v[4] then
    why = 'field p is missing'
  elseif not is_priority(v[5]) then
    why = 'field pr is ' .. show(v[5])
  elseif v[6] and not is_utf8(v[6]) then
    why = 'field t is ' .. show(v[6])
  elseif not is_count(v[7]) then
    why = 'field f is ' .. show(v[7])
  elseif not is_count(v[8]) then
    why = 'field d is ' .. show(v[8])
  elseif tonumber(v[7] or 0) > tonumber(v[8] or 0) then
    -- each failure was a delivery; more would hide deaths from max_deliveries
    why = 'more failures (f) than deliveries (d)'
  else
    return v
  end
  junk_item(id, why, q, R, m)
  return nil
end

-- Leases that ran out and schedules that came due go back to the ready set, in their old place.
local function promote(q, now, limit)
  local ready = qkey(q, 'r')
  local L, S = qkey(q, 'l'), qkey(q, 's')
  local ended = owned_call('ZRANGEBYLEX', L, '-', '(' .. stamp(now) .. ';', 'LIMIT', 0, limit)
  local due = owned_call('ZRANGEBYSCORE', S, '-inf', now, 'LIMIT', 0, limit)
  local back, gone = {}, {}
  for _, m in ipairs(ended) do
    local v = member_item(q, L, m, id_of(m), '1', {'q', 'm', 'st', 'du'})
    if v then back[#back + 1] = {id_of(m), v.m}; gone[#gone + 1] = m end
  end
  zrem_all(L, gone)
  gone = {}
  for _, id in ipairs(due) do
    local v = member_item(q, S, id, id, '2', {'q', 'm', 'st', 'du'})
    if v then back[#back + 1] = {id, v.m}; gone[#gone + 1] = id end
  end
  zrem_all(S, gone)
  for _, x in ipairs(back) do
    redis.call('HSET', P .. ':i:' .. x[1], 'st', 0)
    owned_call('ZADD', ready, 0, x[2])
  end
end

-- Job totals (COUNTED in backends/base.py): P:q:NAME:t maps event ':' task to how many, counted
-- by the script that makes the change. Sites add up a batch per task (count_one) and write it with
-- one HINCRBY per task (count_all).
local function count(q, task, what, n)
  add_count(qkey(q, 't'), what .. ':' .. task, n)
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
  if st == '3' then return 'waiting' end
  if st == '0' or tonumber(du) <= now then return 'queued' end
  if st == '1' then return 'running' end
  return 'scheduled'
end

-- The jobs that depend on id and that the store still holds, oldest first, joined by spaces.
local function children_of(id)
  local out = {}
  for _, c in ipairs(owned_call('ZRANGE', P .. ':ch:' .. id, 0, -1)) do
    if string.match(c, ID_PATTERN) and redis.call('EXISTS', P .. ':i:' .. c) == 1 then
      out[#out + 1] = c
    end
  end
  return table.concat(out, ' ')
end

-- Everything about a job as a flat list (nil for a plain item or a missing id): id, queue, task,
-- status, then FIELDS from pr to n, then unique key (false: none), parents, children, policy.
local FIELDS = {'q', 't', 'st', 'out', 'du', 'pr', 'p', 'd', 'f', 'c', 's', 'fi', 'r', 'e', 'g', 'n',
                'u', 'pa', 'od', 'hc', 'uw', 'uf', 'o', 'w'}
-- Why the record v (as FIELDS reads it) of a job cannot be listed, or nil.
local function job_fault(v)
  for i, name in ipairs(FIELDS) do
    if not field_ok(name, v[i]) then return 'field ' .. name .. ' is ' .. show(v[i]) end
  end
  if not (v[10] and v[16]) then return 'a job with no created time or number' end
  if (v[3] == '1' or v[3] == '2') and not v[5] then return 'a lease or schedule with no end (du)' end
  if v[3] == '-1' and not v[4] then return 'finished with no outcome (out)' end
  return nil
end

-- key: the set id was found in (a dangling id is moved out of it), or nil.
local function job(id, now, key)
  local v, why = {}, nil
  if not string.match(id, ID_PATTERN) then
    why = 'not an item id'
  else
    v = redis.pcall('HMGET', P .. ':i:' .. id, unpack(FIELDS))
    if v.err then
      why = 'not a hash'
    elseif not v[2] then  -- a plain item, or nothing (a dangling id when a set named it)
      if not (v[1] or v[3]) and key and redis.call('EXISTS', P .. ':i:' .. id) == 0 then
        why = 'no item hash'
      end
    else
      why = job_fault(v)
    end
  end
  if why then
    junk_item(id, why, v[1], key, key and id)
    return nil
  end
  if not v[2] then return nil end
  local status = status_of(v[3], v[4], v[5], now)
  -- the worker: the lease's owner while it runs, else the owner of its last run that ended
  local worker = v[24] or false
  if status == 'running' and v[23] and v[23] ~= '' then worker = v[23] end
  return {id, v[1], v[2], status, v[6], v[7], v[8], v[9], v[10],
          v[11], v[12], v[13], v[14], v[15], v[16], v[17] or false, v[18] or '',
          v[20] and children_of(id) or '', v[19] or 'cancel', v[5] or false, worker}
end

-- Take an item out of whichever set holds it; v: its fields m and du, read and checked.
local function unlist(q, id, st, v)
  if st == '0' then
    owned_call('ZREM', qkey(q, 'r'), v.m)
  elseif st == '1' then
    owned_call('ZREM', qkey(q, 'l'), lease_member(v.du, id))
  elseif st == '2' then
    owned_call('ZREM', qkey(q, 's'), id)
  elseif st == '3' then
    owned_call('ZREM', qkey(q, 'a'), id)
    redis.call('DEL', P .. ':pw:' .. id)
  end
end

-- ZADD of score, member pairs in one call per few thousand (unpack has a limit).
local function zadd_pairs(key, flat)
  for i = 1, #flat, 4000 do
    owned_call('ZADD', key, unpack(flat, i, math.min(i + 3999, #flat)))
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

-- Whether the 8 inbox values from b on are one push as the client writes them.
local function is_push(e, b)
  return e[b] ~= '' and string.match(e[b + 1], ID_PATTERN) ~= nil
    and string.match(e[b + 2], '^[0-3/][0-9a-f]*!$') ~= nil and is_priority(e[b + 3])
    and is_stamp(e[b + 6]) and (e[b + 7] == '0' or e[b + 7] == '1')
end

-- Where the pushes start among the inbox values e; a value that starts none is a stray, moved
-- aside. Returns the starts and how many values were used (a push cut off by the end of a full
-- batch is left for the next run).
local function find_pushes(IN, e)
  local starts, strays, b = {}, {}, 1
  while b + 7 <= #e do
    if is_push(e, b) then
      starts[#starts + 1] = b
      b = b + 8
    else
      strays[#strays + 1] = e[b]
      b = b + 1
    end
  end
  if #e < INBOX_BATCH * 8 then  -- the whole inbox: a tail too short for a push is junk
    while b <= #e do
      strays[#strays + 1] = e[b]
      b = b + 1
    end
  end
  if #strays > 0 then
    junk_values(IN, strays, #strays .. ' value(s) that are not part of a push')
  end
  return starts, b - 1
end

local function ingest()
  local IN = P .. ':in'
  local e = redis.pcall('LRANGE', IN, 0, INBOX_BATCH * 8 - 1)
  if e.err then
    local aside = P .. ':junk:in:' .. redis.call('INCR', P .. ':junk:n')
    redis.call('RENAME', IN, aside)
    note_junk(IN, aside, 'not a list')
    return true
  end
  if #e == 0 then return true end
  local starts, used = find_pushes(IN, e)
  redis.call('LTRIM', IN, used, -1)
  local n = #starts
  if n == 0 then return redis.call('LLEN', IN) == 0 end
  local first = next_seq(n)
  local ready, jobs, seen, made = {}, {}, {}, {}
  for i = 0, n - 1 do
    local b = starts[i + 1]
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
    owned_call('SADD', P .. ':queues', q)
  end
  for q, pairs_ in pairs(jobs) do zadd_pairs(qkey(q, 'j'), pairs_) end
  for q, t in pairs(made) do count_all(q, 'enqueued', t) end
  return redis.call('LLEN', IN) == 0
end

-- For the scripts that read or order items: all of the inbox filed, or stop and be run again.
local function ingest_all()
  -- A run that stopped (BAOZI_MORE) after moving something aside left its report here.
  junked = junked or redis.call('EXISTS', JUNK_NEW) == 1
  if not ingest() then
    error({err = 'BAOZI_MORE the inbox holds more items: run the script again'})
  end
end

-- The first n ready items of q (the last n with back), checked: their ids and their fields as
-- READY_FIELDS reads them (p 4, pr 5, t 6, f 7, d 8). Junk among them is moved aside and the head
-- read again, for a bounded number of rounds; what is returned is then the head (or the tail).
local function ready_head(q, n, back)
  local R = qkey(q, 'r')
  local ids, vals, seen
  for _ = 1, 20 do
    local got = redis.call(back and 'ZREVRANGE' or 'ZRANGE', R, 0, n - 1)
    local clean = true
    ids, vals = {}, {}
    for _, m in ipairs(got) do
      local v = seen and seen[m]
      if v == nil then v = ready_item(q, R, m) or false end
      if v then
        ids[#ids + 1] = id_of(m)
        vals[#vals + 1] = v
      else
        clean = false
      end
      if seen then seen[m] = v end
    end
    if clean then break end
    if not seen then  -- read again: what was checked is not checked twice
      seen = {}
      for i, id in ipairs(ids) do seen[vals[i][2]] = vals[i] end
    end
  end
  return ids, vals
end

-- Lease items of q, taken out of their sets already, to owner: ids, with their fields vals as
-- READY_FIELDS reads them. Returns per item: id, payload, priority, deliveries, task, failures.
local function lease_items(q, owner, lease, ids, vals, now)
  local started, until_ = stamp(now), stamp(now + lease)
  local out, leased, took = {}, {}, {}
  for i, id in ipairs(ids) do
    local v = vals[i]
    local d = tonumber(v[8] or 0) + 1
    redis.call('HSET', P .. ':i:' .. id, 'st', 1, 'o', owner, 'du', until_, 's', started, 'd', d)
    count_one(took, v[6])
    leased[#leased + 1] = 0
    leased[#leased + 1] = lease_member(until_, id)
    put_item(out, id, v, d)
  end
  zadd_pairs(qkey(q, 'l'), leased)
  count_all(q, 'started', took)
  return out
end

-- Lease the first n ready items of q to owner, as lease_items returns them.
local function lease_head(q, owner, lease, n, now)
  if n <= 0 then return {} end
  local ids, vals = ready_head(q, n, false)
  if #ids == 0 then return {} end
  owned_call('ZREMRANGEBYRANK', qkey(q, 'r'), 0, #ids - 1)  -- the checked head (junk is gone)
  return lease_items(q, owner, lease, ids, vals, now)
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
    owned_call('ZREM', W, owner)
    return
  end
  redis.call('HSET', P .. ':wi', owner, math.max(free, 0) .. ' ' .. lease .. ' ' .. channel)
  if free > 0 then
    owned_call('ZADD', W, now + IDLE_TTL, owner)
  else
    owned_call('ZREM', W, owner)
  end
end

-- Jobs handed to owner that it has not taken in yet, given how many it has (received).
local function in_flight(owner, received)
  local handed = redis.call('HGET', P .. ':wh', owner)
  if handed and not string.match(handed, '^%-?%d+$') then
    junk_field(P .. ':wh', owner, 'not a count')
    handed = 0
  end
  return math.max(tonumber(handed or 0) - received, 0)
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
  local gone = owned_call('ZRANGEBYSCORE', W, '-inf', now)
  if #gone > 0 then owned_call('ZREM', W, unpack(gone)) end
  local handed = false
  for _, owner in ipairs(owned_call('ZRANGE', W, 0, -1)) do
    local info = redis.call('HGET', P .. ':wi', owner)
    local free, lease, channel
    if info then
      free, lease, channel = string.match(info, '^(%d+) (%S+) (.+)$')
    end
    -- Only to a process that still listens (one killed does not, at once).
    free, lease = tonumber(free or 0), tonumber(lease or 0)
    if info and (not lease or lease <= 0) then
      junk_field(P .. ':wi', owner, 'not free slots, lease seconds and a channel')
      owned_call('ZREM', W, owner)
    elseif free == 0 then
      owned_call('ZREM', W, owner)  -- busy (its reserve on another queue took its slots)
    elseif channel and redis.call('PUBSUB', 'NUMSUB', channel)[2] > 0 then
      local out = lease_head(q, owner, lease, free, now)
      if #out == 0 then break end
      handed = true
      enter_idle(q, owner, free - #out / 6, lease, channel, now)
      add_count(P .. ':wh', owner, #out / 6)
      local msg = {field(q), field(owner)}
      for i = 1, #out do msg[#msg + 1] = field(out[i]) end
      redis.call('PUBLISH', channel, table.concat(msg))
    else
      owned_call('ZREM', W, owner)
    end
  end
  -- Taking items from a bounded queue may let a waiting producer in.
  if handed and redis.call('HEXISTS', qkey(q, 'o'), 'maxsize') == 1 then changed(q) end
  return handed and owned_call('ZCARD', qkey(q, 'r')) == 0
end
