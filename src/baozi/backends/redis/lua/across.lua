-- enqueue_across: plain jobs into several queues in one run, all or none. ARGV: P, retried ('1'
-- when the call is sent again after a lost reply), the time of every job's publish-pending mark
-- ('' for none), the number of groups, then per group: queue, maxsize (0: none), how many jobs;
-- then per job, group after group: id, priority key, priority, payload, task.
-- Each job is filed as add files a plain job at the back, ready now: the same hash fields, sets
-- and totals; the groups one after the other. Every queue filed is handed to its workers
-- waiting idle, and its change announced for what they do not take.
-- Returns {created, rank...}: each job's rank once every group is filed, false for one handed
-- straight to a waiting worker; {'full', group (from 1), its queue's ready count} when a
-- group's queue would go over its maxsize (nothing is written); 0 when a retried call finds
-- its jobs already filed.
local pending = ARGV[3] ~= '' and ARGV[3]
local G = tonumber(ARGV[4])
local groups, total = {}, 0
for g = 1, G do
  local h = 2 + g * 3
  groups[g] = {q = ARGV[h], maxsize = tonumber(ARGV[h + 1]), n = tonumber(ARGV[h + 2]),
               at = 5 + G * 3 + total * 5}
  total = total + groups[g].n
end
if total == 0 then return {} end
if ARGV[2] == '1' and redis.call('EXISTS', P .. ':i:' .. ARGV[5 + G * 3]) == 1 then return 0 end
local now = clock()
-- Every bounded queue checked before the first write; groups naming one queue count together.
local held, filed = {}, {}
for g, x in ipairs(groups) do
  local before = filed[x.q] or 0
  if x.maxsize > 0 and x.n > 0 then
    if not held[x.q] then
      promote(x.q, now, 1000)  -- so the ready count is right
      held[x.q] = owned_call('ZCARD', qkey(x.q, 'r'))
    end
    if held[x.q] + before + x.n > x.maxsize then return {'full', g, held[x.q]} end
  end
  filed[x.q] = before + x.n
end
local seq = next_seq(total) - 1
local created = stamp(now)
local members, order, seen = {}, {}, {}
for _, x in ipairs(groups) do
  local ready, jobs, made, marks = {}, {}, {}, {}
  for i = 0, x.n - 1 do
    local b = x.at + i * 5
    local id, task = ARGV[b], ARGV[b + 4]
    seq = seq + 1
    local m = ARGV[b + 1] .. '1' .. string.format('%016d', seq) .. ':' .. id
    members[#members + 1] = m
    redis.call('HSET', P .. ':i:' .. id, 'q', x.q, 'm', m, 'pr', ARGV[b + 2], 'p', ARGV[b + 3],
               'st', 0, 't', task, 'n', seq, 'c', created)
    ready[#ready + 1] = 0
    ready[#ready + 1] = m
    jobs[#jobs + 1] = seq
    jobs[#jobs + 1] = id
    count_one(made, task)
    if pending then
      marks[#marks + 1] = pending
      marks[#marks + 1] = id
    end
  end
  if x.n > 0 then
    zadd_pairs(qkey(x.q, 'r'), ready)
    zadd_pairs(qkey(x.q, 'j'), jobs)
    zadd_pairs(qkey(x.q, 'p'), marks)
    count_all(x.q, 'enqueued', made)
    if not seen[x.q] then
      seen[x.q] = true
      order[#order + 1] = x.q
    end
  end
end
for _, q in ipairs(order) do owned_call('SADD', P .. ':queues', q) end
-- Straight to workers waiting idle; the change is announced for what they do not take.
for _, q in ipairs(order) do
  if not handoff(q, clock()) then changed(q) end
end
local reply, k = {created}, 0
for _, x in ipairs(groups) do
  local R = qkey(x.q, 'r')
  for _ = 1, x.n do
    k = k + 1
    reply[k + 1] = owned_call('ZRANK', R, members[k]) or false
  end
end
return reply
