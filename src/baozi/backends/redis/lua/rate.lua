-- One step of a rate limit (a generic cell rate: the hash P:rate holds, per name, when the next
-- event is due on the steady rate; server clock). ARGV: P, name, interval, burst, ticket ('' for
-- none). A ticket's booking (the sorted set P:rb:NAME scores each by its time) is admitted once
-- its time has come; a refused ticket is booked for the next free time.
-- Returns the seconds to wait as text: '0' when admitted.
local name, interval, burst, ticket = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local H, B = P .. ':rate', P .. ':rb:' .. name
local now = clock()
if ticket ~= '' then
  owned_call('ZREMRANGEBYSCORE', B, '-inf', now - 600)  -- bookings of jobs that went away
  local booked = owned_call('ZSCORE', B, ticket)
  if booked then
    booked = tonumber(booked)
    if booked <= now + 0.002 then
      owned_call('ZREM', B, ticket)
      return '0'
    end
    return string.format('%.17g', booked - now)
  end
end
local tat = tonumber(redis.call('HGET', H, name) or now)
if not tat then  -- junk where the time is kept: moved aside, and the limit starts over
  junk_field(H, name, 'not a time')
  tat = now
end
if tat < now then tat = now end
local wait = tat - now - (burst - 1) * interval
if wait > 0 then
  if ticket ~= '' then
    redis.call('HSET', H, name, string.format('%.17g', tat + interval))
    owned_call('ZADD', B, string.format('%.17g', now + wait), ticket)
  end
  return string.format('%.17g', wait)
end
redis.call('HSET', H, name, string.format('%.17g', tat + interval))
return '0'
