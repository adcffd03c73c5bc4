-- One step of a rate limit (a generic cell rate: the hash P:rate holds, per name, when the next
-- event is due on the steady rate; server clock). ARGV: P, name, interval, burst.
-- Returns the seconds to wait as text: '0' when admitted.
local name, interval, burst = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local H = P .. ':rate'
local now = clock()
local tat = tonumber(redis.call('HGET', H, name) or now)
if tat < now then tat = now end
local wait = tat - now - (burst - 1) * interval
if wait > 0 then return string.format('%.17g', wait) end
redis.call('HSET', H, name, string.format('%.17g', tat + interval))
return '0'
