-- Job records. ARGV: P, how, ... where how is
--   'ids', id...                       -> the records of these ids (nil for no job);
--   'list', queue, status, limit, offset -> newest first, '' for any status;
--   'status', id...                   -> only the status of each (nil for no job);
--   'place', id                       -> its record, then its rank when it is queued (else
--                                        false), read at one moment.
--   'places', id...                   -> the same for each id, all at one moment.
--   'page', queue, status, task, since, until, search, below, limit, budget
--                                     -> a page of records_page (see page below), then the
--                                        order number to go on below, or false at the end;
--   'oldest', queue...                -> per queue with ready jobs: queue, the creation time of
--                                        its oldest ready job.
-- A record is 21 values (see job() in the prelude).
local how, now = ARGV[2], clock()
local out = {}
local function put(rec)
  if rec then
    for i = 1, 21 do out[#out + 1] = rec[i] end
  else
    for i = 1, 21 do out[#out + 1] = false end
  end
end

-- Newest first, by order number (the score of P:q:NAME:j, from one counter for every queue,
-- so the queues' indexes merge into one order): the records below order number `below` ('':
-- from the newest) that pass the filters ('' for none), at most `limit` of them, examining at
-- most `budget` records. Returns the order number of the last record examined when it stopped
-- with records left to examine, else false.
local PAGE_BATCH = 200
local function fill(s)
  local top = s.bound and ('(' .. s.bound) or '+inf'
  local got = owned_call('ZREVRANGEBYSCORE', s.key, top, '-inf', 'WITHSCORES', 'LIMIT', 0, PAGE_BATCH)
  s.ids, s.scores, s.at = {}, {}, 1
  for i = 1, #got, 2 do
    s.ids[#s.ids + 1] = got[i]
    s.scores[#s.scores + 1] = tonumber(got[i + 1])
  end
  s.more = #got == 2 * PAGE_BATCH
  if #got > 0 then s.bound = got[#got] end
end
local function passes(rec, f)
  if f.status ~= '' and rec[4] ~= f.status then return false end
  if f.task ~= '' and rec[3] ~= f.task then return false end
  local created = tonumber(rec[9])
  if f.since and created < f.since then return false end
  if f.before and created >= f.before then return false end
  -- string.lower folds ASCII letters only (the server's C locale), as the client's fold does
  if f.search ~= '' and rec[1] ~= f.search
     and not string.find(string.lower(rec[3]), string.lower(f.search), 1, true) then
    return false
  end
  return true
end
local function page(names, f, below, limit, budget)
  local streams = {}
  for _, name in ipairs(names) do
    local s = {key = qkey(name, 'j'), bound = below}
    fill(s)
    if #s.ids > 0 then streams[#streams + 1] = s end
  end
  local taken, examined, last = 0, 0, false
  while true do
    local best, top = nil, nil
    for _, s in ipairs(streams) do
      if s.at <= #s.ids and (not top or s.scores[s.at] > top) then best, top = s, s.scores[s.at] end
    end
    if not best then return false end
    if taken == limit or examined == budget then return last end
    local rec = job(best.ids[best.at], now, best.key)
    examined, last = examined + 1, best.scores[best.at]
    if rec and passes(rec, f) then
      put(rec)
      taken = taken + 1
    end
    best.at = best.at + 1
    if best.at > #best.ids and best.more then fill(best) end
  end
end

-- The creation time of queue q's oldest ready job (as its record holds it), or nil. Order numbers grow as jobs are
-- added, so it is the oldest of the first in each priority's line: a ready member is the
-- priority's key (ending in '!'), '0' and the order inverted for a push to the front (the
-- earliest is the last of them) or '1' and the order for one to the back (the earliest is the
-- first), ':' and the id. Two reads per priority, never a walk over the line.
local function oldest_ready(q)
  promote(q, now, 1000)  -- what ran out is back in line
  local R, oldest, text, from = qkey(q, 'r'), nil, nil, '-'
  for _ = 1, 1000 do
    local first = owned_call('ZRANGEBYLEX', R, from, '+', 'LIMIT', 0, 1)[1]
    if not first then break end
    local bang = string.find(first, '!', 1, true)
    if not bang then break end  -- junk: no priority key
    local key = string.sub(first, 1, bang)
    local front = owned_call('ZREVRANGEBYLEX', R, '(' .. key .. '1', '[' .. key .. '0', 'LIMIT', 0, 1)[1]
    local back = owned_call('ZRANGEBYLEX', R, '[' .. key .. '1', '(' .. key .. '2', 'LIMIT', 0, 1)[1]
    for _, m in ipairs({front or '', back or ''}) do
      local id = id_of(m)
      if id then
        local v = redis.call('HMGET', P .. ':i:' .. id, 't', 'c')
        local c = v[1] and tonumber(v[2])
        if c and (not oldest or c < oldest) then oldest, text = c, v[2] end
      end
    end
    from = '(' .. key .. '\255'
  end
  return text
end
local function rank_of(q, member)
  local rank = owned_call('ZRANK', qkey(q, 'r'), member)
  for _ = 1, 100 do  -- more than a thousand ran out at once: promote until it is among them
    if rank then break end
    promote(q, now, 1000)
    rank = owned_call('ZRANK', qkey(q, 'r'), member)
  end
  return rank or false
end
if how == 'place' or how == 'places' then
  local promoted = {}
  for i = 3, #ARGV do
    local id = ARGV[i]
    local v, why = read_item(id, {'q', 'm', 'st'})
    if why then
      junk_item(id, why, v.q)
      put(nil)
      out[#out + 1] = false
    else
      if v.q and v.st ~= '-1' and not promoted[v.q] then  -- what ran out is back in line
        promote(v.q, now, 1000)
        promoted[v.q] = true
      end
      local rec = job(id, now)
      put(rec)
      local rank = false
      if rec and rec[4] == 'queued' then rank = rank_of(v.q, v.m) end
      out[#out + 1] = rank
    end
  end
elseif how == 'page' then
  local f = {status = ARGV[4], task = ARGV[5], since = tonumber(ARGV[6]),
             before = tonumber(ARGV[7]), search = ARGV[8]}
  local names = {ARGV[3]}
  if ARGV[3] == '' then names = owned_call('SMEMBERS', P .. ':queues') end
  local below = ARGV[9] ~= '' and ARGV[9] or nil
  local cursor = page(names, f, below, tonumber(ARGV[10]), tonumber(ARGV[11]))
  out[#out + 1] = cursor  -- after the records
elseif how == 'oldest' then
  for i = 3, #ARGV do
    local oldest = oldest_ready(ARGV[i])
    if oldest then
      out[#out + 1] = ARGV[i]
      out[#out + 1] = oldest
    end
  end
elseif how == 'ids' then
  for i = 3, #ARGV do put(job(ARGV[i], now)) end
elseif how == 'status' then
  for i = 3, #ARGV do
    local v, why = read_item(ARGV[i], {'q', 't', 'st', 'out', 'du'})
    if why then junk_item(ARGV[i], why, v.q) end
    out[#out + 1] = not why and v.t and status_of(v.st, v.out, v.du, now) or false
  end
else
  local J, status = qkey(ARGV[3], 'j'), ARGV[4]
  local limit, offset = tonumber(ARGV[5]), tonumber(ARGV[6])
  if status == '' then
    for _, id in ipairs(owned_call('ZREVRANGE', J, offset, offset + limit - 1)) do
      put(job(id, now, J))
    end
  else
    local start, skipped, taken = 0, 0, 0
    while taken < limit do
      local ids = owned_call('ZREVRANGE', J, start, start + 499)
      if #ids == 0 then break end
      for _, id in ipairs(ids) do
        local rec = job(id, now, J)
        if rec and rec[4] == status then
          if skipped < offset then
            skipped = skipped + 1
          elseif taken < limit then
            put(rec)
            taken = taken + 1
          end
        end
      end
      start = start + 500
    end
  end
end
return out
