"""The Lua scripts of the Redis store: every multi-key change runs as one script.

A script runs atomically on the server, so a session key and its user's index never
disagree and the per-user limit cannot be raced past. The scripts derive session keys from
the prefix passed in ``ARGV``. On Redis Cluster every key a script touches, declared or
derived, carries the hash tag of its ``KEYS`` (the user's, or the fixed account and key
tags), so each script runs within one slot (see :mod:`satchel.stores.redis_cluster`).
Times are integer milliseconds; hash fields are those of :mod:`satchel.stores.redis_fields`.
The limit and rotation rules are those of :mod:`satchel.stores.rules`, written in Lua.
"""

LUA_EXTEND = """
local function extend(key, at)
  local current = redis.call('PEXPIRETIME', key)
  if current == -1 or current < at then redis.call('PEXPIREAT', key, at) end
end
"""

# KEYS: session key, index key. ARGV: session key prefix, now, max ('' = none), deny ('1'),
# created_at, expire-at ms, session id, field/value pairs...
CREATE = (
    LUA_EXTEND
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local now = tonumber(ARGV[2])
local live, dead = {}, {}
for _, sid in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local e = redis.call('HMGET', ARGV[1] .. sid, 'i', 'a')
  local i, a = tonumber(e[1]), tonumber(e[2])
  if not e[1] and not e[2] then
    dead[#dead + 1] = sid
  elseif i and a and math.min(i, a) <= now then
    dead[#dead + 1] = sid
  else
    live[#live + 1] = sid
  end
end
local evict = {}
if ARGV[3] ~= '' then
  local max = tonumber(ARGV[3])
  if #live >= max then
    if ARGV[4] == '1' then return -2 end
    for n = 1, #live - max + 1 do evict[n] = live[n] end
  end
end
for _, sid in ipairs(dead) do
  redis.call('DEL', ARGV[1] .. sid)
  redis.call('ZREM', KEYS[2], sid)
end
for _, sid in ipairs(evict) do
  redis.call('DEL', ARGV[1] .. sid)
  redis.call('ZREM', KEYS[2], sid)
end
redis.call('HSET', KEYS[1], unpack(ARGV, 8))
local at = tonumber(ARGV[6])
redis.call('PEXPIREAT', KEYS[1], at)
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[7])
extend(KEYS[2], at)
return evict
"""
)

# KEYS: session key and (Redis Cluster) the index key. ARGV: last_seen, idle expiry, index
# key prefix: without KEYS[2] the index is that prefix .. the stored user id.
TOUCH = (
    LUA_EXTEND
    + """
local e = redis.call('HMGET', KEYS[1], 'u', 'a')
local a = tonumber(e[2])
if not e[1] or not a then return 0 end
redis.call('HSET', KEYS[1], 'l', ARGV[1], 'i', ARGV[2])
local at = math.min(tonumber(ARGV[2]), a)
redis.call('PEXPIREAT', KEYS[1], at)
extend(KEYS[2] or (ARGV[3] .. e[1]), at)
return 1
"""
)

# KEYS: session key and (Redis Cluster) the index key. ARGV: index key prefix (as in TOUCH),
# session id.
DELETE = """
local rec = redis.call('HGETALL', KEYS[1])
if #rec == 0 then return rec end
local uid = redis.call('HGET', KEYS[1], 'u')
redis.call('DEL', KEYS[1])
if uid then redis.call('ZREM', KEYS[2] or (ARGV[1] .. uid), ARGV[2]) end
return rec
"""

# KEYS: index key. ARGV: session key prefix, keep id, has-keep flag.
DELETE_USER = """
local removed = {}
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if ARGV[3] ~= '1' or sid ~= ARGV[2] then
    if redis.call('DEL', ARGV[1] .. sid) == 1 then removed[#removed + 1] = sid end
    redis.call('ZREM', KEYS[1], sid)
  end
end
return removed
"""

# KEYS: index key. ARGV: session key prefix, now.
PURGE_USER = """
local now = tonumber(ARGV[2])
local n = 0
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local e = redis.call('HMGET', ARGV[1] .. sid, 'i', 'a')
  local i, a = tonumber(e[1]), tonumber(e[2])
  if not e[1] and not e[2] then
    redis.call('ZREM', KEYS[1], sid)
  elseif i and a and math.min(i, a) <= now then
    redis.call('DEL', ARGV[1] .. sid)
    redis.call('ZREM', KEYS[1], sid)
    n = n + 1
  end
end
return n
"""

# KEYS: session key. ARGV: presented hash, successor hash, now, grace (times in ms).
ROTATE = """
local e = redis.call('HMGET', KEYS[1], 'r', 'p', 't', 'i', 'a')
local now = tonumber(ARGV[3])
local i, a = tonumber(e[4]), tonumber(e[5])
if not i or not a or math.min(i, a) <= now then return 'unknown' end
if e[1] and e[1] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'p', ARGV[1], 'r', ARGV[2], 't', ARGV[3])
  redis.call('HINCRBY', KEYS[1], 'g', 1)
  return 'rotated'
end
local t = tonumber(e[3])
if e[1] and e[2] and t and e[2] == ARGV[1] and e[1] == ARGV[2]
    and now - t <= tonumber(ARGV[4]) then
  return 'grace'
end
return 'reused'
"""

# KEYS: user key, names hash, emails hash. ARGV: user id, username_key, record JSON and,
# for an account with an address, its email key.
CREATE_USER = """
local mail = ARGV[4]
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1
    or (mail and redis.call('HEXISTS', KEYS[3], mail) == 1) then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
if mail then redis.call('HSET', KEYS[3], mail, ARGV[1]) end
redis.call('SET', KEYS[1], ARGV[3])
return 1
"""

# KEYS: names hash, emails hash. ARGV: user key prefix, then per user: id, username_key,
# record JSON, has-email flag ('1'), email key. Returns the 1-based positions refused.
CREATE_USERS = """
local refused = {}
local n = 0
for i = 2, #ARGV, 5 do
  n = n + 1
  local id, name, has, mail = ARGV[i], ARGV[i + 1], ARGV[i + 3] == '1', ARGV[i + 4]
  local key = ARGV[1] .. id
  if redis.call('EXISTS', key) == 1 or redis.call('HEXISTS', KEYS[1], name) == 1
      or (has and redis.call('HEXISTS', KEYS[2], mail) == 1) then
    refused[#refused + 1] = n
  else
    redis.call('HSET', KEYS[1], name, id)
    if has then redis.call('HSET', KEYS[2], mail, id) end
    redis.call('SET', key, ARGV[i + 2])
  end
end
return refused
"""

# KEYS: user key, names hash, emails hash. ARGV: user id, new username_key, record JSON and,
# for an account with an address, its email key. The replaced name and address are read
# from the stored record (``username_key``, ``email_key``) and dropped from the indexes.
UPDATE_USER = """
local current = redis.call('GET', KEYS[1])
if not current then return -1 end
local mail = ARGV[4]
local owner = redis.call('HGET', KEYS[2], ARGV[2])
if owner and owner ~= ARGV[1] then return -2 end
if mail then
  local holder = redis.call('HGET', KEYS[3], mail)
  if holder and holder ~= ARGV[1] then return -2 end
end
local ok, rec = pcall(cjson.decode, current)
if not ok or type(rec) ~= 'table' then rec = {} end
local old = rec['username_key']
if type(old) == 'string' and old ~= ARGV[2] and redis.call('HGET', KEYS[2], old) == ARGV[1] then
  redis.call('HDEL', KEYS[2], old)
end
local old_mail = rec['email_key']
if type(old_mail) == 'string' and old_mail ~= mail
    and redis.call('HGET', KEYS[3], old_mail) == ARGV[1] then
  redis.call('HDEL', KEYS[3], old_mail)
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
if mail then redis.call('HSET', KEYS[3], mail, ARGV[1]) end
redis.call('SET', KEYS[1], ARGV[3])
return 1
"""

# KEYS: secrets hash. ARGV: name, value. First writer wins; returns the stored value (Redis
# Cluster has no MULTI across the pipeline, and one script is one round trip anyway).
HSETNX_THEN_HGET = """
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
return redis.call('HGET', KEYS[1], ARGV[1])
"""

# KEYS: session key. ARGV: data (JSON). Never recreates a deleted or expired session.
SET_DATA = """
if redis.call('HEXISTS', KEYS[1], 'u') == 0 then return 0 end
redis.call('HSET', KEYS[1], 'd', ARGV[1])
return 1
"""
