-- ARGV: P, ids... Removes the records of those jobs that have finished (with their place among
-- the holders of their unique key and among their parents' dependents). Returns how many.
local done = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local v, why = read_item(id, {'q', 't', 'st', 'out', 'u', 'pa'})
  if why and why ~= 'no item hash' and why ~= 'not an item id' then junk_item(id, why, v.q) end
  if not why and v.t and v.st == '-1' then
    drop_record(id, v)
    done = done + 1
  end
end
return done
