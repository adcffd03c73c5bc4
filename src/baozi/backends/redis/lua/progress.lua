-- ARGV: P, id, owner, progress. Stored only while the owner holds the running job.
local h = P .. ':i:' .. ARGV[2]
local v = redis.call('HMGET', h, 'o', 'out', 'q', 't')
if v[1] ~= ARGV[3] or v[2] or not v[4] then return 0 end
redis.call('HSET', h, 'g', ARGV[4])
changed(v[3])
return 1
