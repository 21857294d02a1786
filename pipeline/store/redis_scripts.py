"""The Lua scripts of the Redis store's writes (``pipeline.store.redis``): each applies a
whole run of writes of one kind in a single command."""

from __future__ import annotations

# The multi-key writes run as Lua scripts (EVALSHA), one command for a whole run of writes:
# redis-py spends tens of microseconds packing each command, far more than Redis spends on
# it, so a batch that sets a thousand keys must not send a thousand commands.

# Sorted sets: for each key, ARGV holds keep, trim_above, expire_at (0: none) and the count
# n of its (member, increment) pairs, then the pairs. Adds the increments, trims the set to
# its ``keep`` highest once it holds more than ``trim_above``, sets its expiry. A member that
# a negative increment brings to zero or below (but not to -inf: a block) is removed.
ZINCR_TRIM_MANY = """
local a = 1
for k = 1, #KEYS do
  local keep, above, expire, n = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), ARGV[a + 2], tonumber(ARGV[a + 3])
  a = a + 4
  for i = 1, n do
    local score = redis.call('ZINCRBY', KEYS[k], ARGV[a + 1], ARGV[a])
    local total = tonumber(score)
    if tonumber(ARGV[a + 1]) < 0 and total <= 0 and total > -math.huge then
      redis.call('ZREM', KEYS[k], ARGV[a])
    end
    a = a + 2
  end
  if redis.call('ZCARD', KEYS[k]) > above then
    redis.call('ZREMRANGEBYRANK', KEYS[k], 0, -(keep + 1))
  end
  if tonumber(expire) > 0 then
    redis.call('EXPIREAT', KEYS[k], expire)
  end
end
return 0
"""

# Sorted sets: for each key, ARGV holds expire_at (0: none) and the count n of its (score,
# member) pairs, then the pairs: one ZADD of them (in chunks: Lua unpacks about 8,000 values
# at most), then the expiry.
ZADD_EXPIRE_MANY = """
local a = 1
for k = 1, #KEYS do
  local expire, n = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  local last = a + 2 * n - 1
  for first = a, last, 4000 do
    redis.call('ZADD', KEYS[k], unpack(ARGV, first, math.min(first + 3999, last)))
  end
  a = last + 1
  if expire > 0 then
    redis.call('EXPIREAT', KEYS[k], expire)
  end
end
return 0
"""

# Hashes: for each key, ARGV holds the count n of its (field, increment) pairs, then them.
HINCRBYFLOAT_MANY = """
local a = 1
for k = 1, #KEYS do
  local n = tonumber(ARGV[a])
  a = a + 1
  for i = 1, n do
    redis.call('HINCRBYFLOAT', KEYS[k], ARGV[a], ARGV[a + 1])
    a = a + 2
  end
end
return 0
"""

# Packed float32 vectors in hashes: for each key, ARGV holds the count n of its fields, then
# (field, delta, base) triples; a missing field starts as base (zeros when empty). One
# command per item costs less than one HINCRBYFLOAT per component (see hadd_vectors).
HADD_VECTORS_MANY = """
local a = 1
local formats = {}
local function format(count)
  local f = formats[count]
  if not f then
    f = '<' .. string.rep('f', count)
    formats[count] = f
  end
  return f
end
for k = 1, #KEYS do
  local n = tonumber(ARGV[a])
  a = a + 1
  for i = 1, n do
    local field, delta, base = ARGV[a], ARGV[a + 1], ARGV[a + 2]
    a = a + 3
    local count = math.floor(#delta / 4)
    local current = redis.call('HGET', KEYS[k], field) or base
    local known = math.min(count, math.floor(#current / 4))
    local sums = {struct.unpack(format(count), delta)}
    if known > 0 then
      local olds = {struct.unpack(format(known), current)}
      for j = 1, known do
        sums[j] = sums[j] + olds[j]
      end
    end
    redis.call('HSET', KEYS[k], field, struct.pack(format(count), unpack(sums, 1, count)))
  end
end
return 0
"""

# Strings: for each key, ARGV holds its TTL in seconds (0: none) and its value.
SET_MANY = """
for k = 1, #KEYS do
  local ttl = tonumber(ARGV[2 * k - 1])
  if ttl > 0 then
    redis.call('SET', KEYS[k], ARGV[2 * k], 'EX', ttl)
  else
    redis.call('SET', KEYS[k], ARGV[2 * k])
  end
end
return 0
"""
# The related-items rule (pipeline.core.blend) where the data is: KEYS are (sorted set,
# weights hash) pairs, then the hidden set; ARGV depth, discount, n, the excluded member,
# then one label per pair. Each set's ``depth`` best members, less the excluded and hidden
# ones, are scored count / (weight + 1) ^ discount (a weight that is missing, not a number,
# negative or NaN counts 0) and ranked, ties by member bytes (compared byte by byte: Lua's
# ``<`` on strings follows the server's locale); one set answers its ``n`` best with its
# label, several are scaled by their best and summed ("blend"). Members go to HMGET and
# SMISMEMBER in chunks (Lua unpacks about 8,000 values at most). Scores go back as %.17g
# strings, which Python parses to the same doubles. Declared read-only (Redis 7): it runs
# during a write pause and on replicas.
RELATED_BLEND = """#!lua flags=no-writes
local depth, discount, n, exclude = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
if depth <= 0 or n <= 0 then
  return {}
end
local count = (#KEYS - 1) / 2
local hidden = KEYS[#KEYS]
local CHUNK = 1000
local function bytes_less(a, b)
  local la, lb = #a, #b
  for i = 1, math.min(la, lb) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return la < lb
end
-- Redis runs Lua slowly (a function call or a new table costs tenths of a microsecond,
-- and a popular item has 3 x depth members): members and scores go in parallel arrays,
-- the reply is not copied when it fits one call, and only the n best are put in order.
local function fetch(command, key, members, size)
  if size <= CHUNK then
    return redis.call(command, key, unpack(members, 1, size))
  end
  local out = {}
  for first = 1, size, CHUNK do
    local part = redis.call(command, key, unpack(members, first, math.min(first + CHUNK - 1, size)))
    for i = 1, #part do
      out[#out + 1] = part[i]
    end
  end
  return out
end
-- The n best of size rows (names, scores), best first: score descending, then member
-- bytes. For a small n one pass that keeps the best so far in order (most rows are
-- rejected by one comparison); for a larger one, moving rows in that pass costs more than
-- sorting them all.
local function best(names, scores, size)
  local top_names, top_scores, kept = {}, {}, 0
  if n > 20 then
    local order = {}
    for i = 1, size do
      order[i] = i
    end
    table.sort(order, function(a, b)
      local x, y = scores[a], scores[b]
      if x ~= y then
        return x > y
      end
      return bytes_less(names[a], names[b])
    end)
    for i = 1, math.min(n, size) do
      top_names[i], top_scores[i] = names[order[i]], scores[order[i]]
    end
    return top_names, top_scores, math.min(n, size)
  end
  for i = 1, size do
    local member, score = names[i], scores[i]
    local at = nil
    if kept < n then
      kept = kept + 1
      at = kept
    else
      local last = top_scores[kept]
      if score > last or (score == last and bytes_less(member, top_names[kept])) then
        at = kept
      end
    end
    if at ~= nil then
      while at > 1 do
        local above = top_scores[at - 1]
        if score > above or (score == above and bytes_less(member, top_names[at - 1])) then
          top_names[at], top_scores[at] = top_names[at - 1], above
          at = at - 1
        else
          break
        end
      end
      top_names[at], top_scores[at] = member, score
    end
  end
  return top_names, top_scores, kept
end
local lists = {}
for s = 1, count do
  local flat = redis.call('ZRANGE', KEYS[2 * s - 1], 0, depth - 1, 'REV', 'WITHSCORES')
  local size = #flat / 2
  local names, scores, scored, top = {}, {}, 0, nil
  if size > 0 then
    local members = {}
    for i = 1, size do
      members[i] = flat[2 * i - 1]
    end
    local weights = fetch('HMGET', KEYS[2 * s], members, size)
    local gone = fetch('SMISMEMBER', hidden, members, size)
    for i = 1, size do
      local member = members[i]
      if gone[i] == 0 and member ~= exclude then
        local weight = tonumber(weights[i])
        if weight == nil or weight ~= weight or weight < 0 then
          weight = 0
        end
        local score = tonumber(flat[2 * i]) / (weight + 1.0) ^ discount
        scored = scored + 1
        names[scored], scores[scored] = member, score
        if top == nil or score > top then
          top = score
        end
      end
    end
  end
  lists[s] = {names, scores, scored, top}
end
local label, names, scores, size = 'blend', {}, {}, 0
if count == 1 then
  label = ARGV[5]
  names, scores, size = lists[1][1], lists[1][2], lists[1][3]
else
  -- Each list is scaled by its best score (1 when that is not positive) and summed.
  local sums = {}
  for s = 1, count do
    local members, scored, top = lists[s][1], lists[s][3], lists[s][4]
    if scored > 0 then
      if not (top > 0) then
        top = 1.0
      end
      local values = lists[s][2]
      for i = 1, scored do
        local member = members[i]
        local sum = sums[member]
        if sum == nil then
          size = size + 1
          names[size] = member
          sum = 0.0
        end
        sums[member] = sum + values[i] / top
      end
    end
  end
  for i = 1, size do
    scores[i] = sums[names[i]]
  end
end
local top_names, top_scores, kept = best(names, scores, size)
local out = {}
for i = 1, kept do
  out[3 * i - 2] = top_names[i]
  out[3 * i - 1] = string.format('%.17g', top_scores[i])
  out[3 * i] = label
end
return out
"""
# Reads that run as scripts, by op name.
READ_SCRIPTS = {"related_blend": RELATED_BLEND}

# Arguments per script call at most: bounds the size of one command (the MULTI still
# applies them all).
WRITE_CHUNK = 8192
# The writes that run as scripts, by op name.
SCRIPTED = {
    "set": SET_MANY,
    "zincr_trim": ZINCR_TRIM_MANY,
    "zadd_expire": ZADD_EXPIRE_MANY,
    "hincr_float": HINCRBYFLOAT_MANY,
    "hadd_vectors": HADD_VECTORS_MANY,
}
