-- ARGV: P, queue. Removes every item of the queue and every finished job it kept (and their
-- publish-pending marks).
local q = ARGV[2]
local seen, count = {}, 0
local function drop(id)
  if not seen[id] then
    seen[id] = true
    count = count + 1
    redis.call('DEL', P .. ':i:' .. id, P .. ':ch:' .. id, P .. ':pw:' .. id)
    owned_call('ZREM', P .. ':done', id)
  end
end
for _, suffix in ipairs({'r', 'l'}) do
  for _, m in ipairs(owned_call('ZRANGE', qkey(q, suffix), 0, -1)) do drop(id_of(m) or '') end
end
for _, suffix in ipairs({'s', 'a', 'j'}) do
  for _, id in ipairs(owned_call('ZRANGE', qkey(q, suffix), 0, -1)) do drop(id) end
end
redis.call('DEL', qkey(q, 'r'), qkey(q, 'l'), qkey(q, 's'), qkey(q, 'a'), qkey(q, 'j'), qkey(q, 'c'),
           qkey(q, 'p'))
changed(q)
return count
