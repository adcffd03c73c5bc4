-- Keys and values of one namespace, in the hash P:kv:NS. ARGV: P, op, ns, key, then per op:
-- set value | setdefault value | delete | cas has-expected expected has-value value
-- | incr kind amount (kind 'i' for an integer, 'f' for a float)
-- | incr_as kind amount [least greatest] (kind 'i' for an integer in least..greatest, 'f32' or
-- 'f64' for a float) | set_tail head tail | incr_tail head kind amount (kind 'i' or 'f', as
-- for incr) | clear. A record is a head, a newline and a tail (see kv_set_tail).
local op, ns, key = ARGV[2], ARGV[3], ARGV[4]
local H = P .. ':kv:' .. ns

-- A Lua number is a double, exact only to 2^53: a 64-bit integer is held as {hi, lo}, its value
-- hi * 1e9 + lo with 0 <= lo < 1e9, both parts exact, so sums and comparisons stay exact.
local E = 1000000000

local function carry(hi, lo)
  local r = lo % E
  return {hi + (lo - r) / E, r}
end

-- The integer written as JSON text of at most 20 digits; nil for any other text.
local function wide(s)
  local sign, digits = string.match(s, '^(%-?)(%d+)$')
  if not digits or #digits > 20 or (#digits > 1 and string.sub(digits, 1, 1) == '0') then
    return nil
  end
  local n, hi = #digits, 0
  if n > 9 then hi = tonumber(string.sub(digits, 1, n - 9)) end
  local lo = tonumber(string.sub(digits, math.max(n - 8, 1)))
  if sign == '-' then return carry(-hi, -lo) end
  return {hi, lo}
end

local function below(a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
end

local function decimal(v)
  if v[1] < 0 then return '-' .. decimal(carry(-v[1], -v[2])) end
  if v[1] == 0 then return string.format('%.0f', v[2]) end
  return string.format('%.0f%09.0f', v[1], v[2])
end

-- The sum of the integer held (absent: 0) and the integer text amount, if it lies in
-- least..greatest (integer texts too): the sum to store, or nil and a reply {'e', held} (not
-- such an integer) or {'o', sum} (out of range).
local function integer_sum(old, amount, least, greatest)
  local low, high, x = wide(least), wide(greatest), {0, 0}
  if old then x = wide(old) end
  if not x or below(x, low) or below(high, x) then return nil, {'e', old} end
  local a = wide(amount)
  local sum = carry(x[1] + a[1], x[2] + a[2])
  if below(sum, low) or below(high, sum) then return nil, {'o', decimal(sum)} end
  return decimal(sum)
end

-- The sum of the float held (absent: 0) and ARGV[6], rounded to single precision for 'f32'.
local function float_sum(old)
  local x = 0
  if old then
    if not (string.match(old, '^%-?%d+%.?%d*$') or string.match(old, '^%-?%d+%.?%d*[eE][-+]?%d+$'))
    then
      return nil, {'e', old}
    end
    x = tonumber(old)
  end
  local sum = x + tonumber(ARGV[6])
  if ARGV[5] == 'f32' and sum == sum and math.abs(sum) ~= math.huge then
    sum = struct.unpack('f', struct.pack('f', sum))  -- as C stores a double in a float
  end
  if sum ~= sum or math.abs(sum) == math.huge then return nil, {'o', tostring(sum)} end
  local text = string.format('%.17g', sum)
  if not string.find(text, '[%.eEn]') then text = text .. '.0' end  -- a float stays a float
  return text
end
if op == 'set' then
  redis.call('HSET', H, key, ARGV[5])
  redis.call('PUBLISH', P .. ':changed', '')
  return 1
elseif op == 'setdefault' then
  redis.call('HSETNX', H, key, ARGV[5])
  return redis.call('HGET', H, key)
elseif op == 'delete' then
  local old = redis.call('HGET', H, key)
  if old then
    redis.call('HDEL', H, key)
    redis.call('PUBLISH', P .. ':changed', '')
  end
  return old
elseif op == 'cas' then
  local old = redis.call('HGET', H, key)
  if ARGV[5] == '1' then
    if old ~= ARGV[6] then return 0 end
  elseif old then
    return 0
  end
  if ARGV[7] == '1' then redis.call('HSET', H, key, ARGV[8]) else redis.call('HDEL', H, key) end
  redis.call('PUBLISH', P .. ':changed', '')
  return 1
elseif op == 'incr' then
  local old = redis.call('HGET', H, key)
  if ARGV[5] == 'i' and (not old or string.match(old, '^%-?%d+$')) then
    -- exact 64-bit integer arithmetic; Redis refuses an overflow
    redis.call('HINCRBY', H, key, ARGV[6])
    return {'i', redis.call('HGET', H, key)}  -- as text: a Lua number is a double
  end
  local x = 0
  if old then x = tonumber(old) end
  if x == nil or (old and string.match(old, '^%s')) then return {'e', old} end
  local sum = x + tonumber(ARGV[6])
  if sum ~= sum or sum == math.huge or sum == -math.huge then return {'o', tostring(sum)} end
  local text = string.format('%.17g', sum)
  if not string.find(text, '[%.eEn]') then text = text .. '.0' end  -- a float stays a float
  redis.call('HSET', H, key, text)
  return {'f', text}
elseif op == 'incr_as' then
  -- Read and checked before the one write: a refused sum changes nothing.
  local old = redis.call('HGET', H, key)
  local sum, refused
  if ARGV[5] == 'i' then
    sum, refused = integer_sum(old, ARGV[6], ARGV[7], ARGV[8])
  else
    sum, refused = float_sum(old)
  end
  if refused then return refused end
  redis.call('HSET', H, key, sum)
  return {ARGV[5], sum}
elseif op == 'set_tail' then
  local old, head = redis.call('HGET', H, key), ARGV[5]
  local at = old and string.find(old, '\n', 1, true)
  if at then head = string.sub(old, 1, at - 1) end  -- a record's head stays as it was
  redis.call('HSET', H, key, head .. '\n' .. ARGV[6])
  redis.call('PUBLISH', P .. ':changed', '')
  return 1
elseif op == 'incr_tail' then
  -- Read and checked before the one write: a refused sum changes nothing.
  local old, head, tail = redis.call('HGET', H, key), ARGV[5], nil
  if old then
    local at = string.find(old, '\n', 1, true)
    if not at then return {'e', old} end
    head, tail = string.sub(old, 1, at - 1), string.sub(old, at + 1)
  end
  local kind, sum, refused = 'f', nil, nil
  if ARGV[6] == 'i' and (not tail or string.match(tail, '^%-?%d+$')) then
    kind = 'i'
    sum, refused = integer_sum(tail, ARGV[7], '-9223372036854775808', '9223372036854775807')
    if refused and refused[1] == 'e' then refused = {'o', tail} end  -- past 20 digits
  else
    local x = 0
    if tail then x = tonumber(tail) end
    if x == nil or (tail and string.match(tail, '^%s')) then return {'e', tail} end
    local total = x + tonumber(ARGV[7])
    if total ~= total or math.abs(total) == math.huge then return {'o', tostring(total)} end
    sum = string.format('%.17g', total)
    if not string.find(sum, '[%.eEn]') then sum = sum .. '.0' end  -- a float stays a float
  end
  if refused then return refused end
  redis.call('HSET', H, key, head .. '\n' .. sum)
  return {kind, sum}
elseif op == 'clear' then
  local n = redis.call('HLEN', H)
  if n > 0 then
    redis.call('DEL', H)
    redis.call('PUBLISH', P .. ':changed', '')
  end
  return n
end
return redis.error_reply('unknown kv op ' .. tostring(op))
