-- Job records. ARGV: P, how, ... where how is
--   'ids', id...                       -> the records of these ids (nil for no job);
--   'list', queue, status, limit, offset -> newest first, '' for any status;
--   'status', id...                   -> only the status of each (nil for no job);
--   'place', id                       -> its record, then its rank when it is queued (else
--                                        false), read at one moment.
--   'places', id...                   -> the same for each id, all at one moment.
-- A record is 20 values (see job() in the prelude).
local how, now = ARGV[2], clock()
local out = {}
local function put(rec)
  if rec then
    for i = 1, 20 do out[#out + 1] = rec[i] end
  else
    for i = 1, 20 do out[#out + 1] = false end
  end
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
