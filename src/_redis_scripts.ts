/**
 * The Lua scripts of `RedisLimiter`. Every script runs atomically in Redis
 * and takes the time from Redis (`TIME`) when it needs it. Whenever someone
 * waits or the limit looks reached, a script drops the leases that expired
 * (holders and waiters of processes that died or froze) and grants free
 * permits to the oldest waiters, publishing each grant on the channel of the
 * process that waits (`<prefix>wake:<token>`, the token being the part of
 * the id before `:`). Every script also returns the ids it granted, so
 * that the process that ran it resolves its own waiters among them without
 * waiting for the message.
 *
 * Keys, all under one hash tag so that a cluster keeps them on one node
 * (they empty themselves; only the arrivals counter stays):
 * 1. `holders`, a sorted set: permit id -> lease expiry (ms, Redis time);
 * 2. `queue`, a sorted set: waiter id -> arrival number (FIFO order);
 * 3. `waiting`, a sorted set: waiter id -> lease expiry of the waiter;
 * 4. `arrivals`, a counter that numbers the arrivals.
 *
 * Arguments common to every script: `limit`, `lease` (ms). The prefix of
 * the channels is the keys' own.
 */

const COMMON = `
local holders, queue, waiting = KEYS[1], KEYS[2], KEYS[3]
local limit, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
-- The keys' common prefix: KEYS[1] ends with 'holders'.
local prefix = string.sub(holders, 1, -8)
local now
-- The waiters this script granted, returned to its caller.
local grants = {}

-- Redis time in ms, read once per script and only when needed.
local function clock()
  if now == nil then
    local time = redis.call('TIME')
    now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  end
  return now
end

local function reclaim()
  redis.call('ZREMRANGEBYSCORE', holders, '-inf', clock())
end

-- Drops the waiters whose lease ran out, then grants free permits to the
-- oldest; only called when someone waits.
local function grant()
  local dead = redis.call('ZRANGEBYSCORE', waiting, '-inf', clock())
  if #dead > 0 then
    redis.call('ZREM', queue, unpack(dead))
    redis.call('ZREM', waiting, unpack(dead))
  end
  local free = limit - redis.call('ZCARD', holders)
  while free > 0 do
    local first = redis.call('ZPOPMIN', queue)[1]
    if first == nil then break end
    redis.call('ZREM', waiting, first)
    redis.call('ZADD', holders, now + lease, first)
    redis.call('PUBLISH', prefix .. 'wake:' .. string.match(first, '^[^:]+'), first)
    grants[#grants + 1] = first
    free = free - 1
  end
  return redis.call('ZCARD', queue)
end
`;

/**
 * Acquisitions, in arrival order: ARGV 3, 5, ... the ids, each followed by
 * how many may wait: `-2` none (`tryAcquire`), `-1` no bound, else the
 * bound. Returns `{ answers, grants }`: for each acquisition, 1 (granted),
 * 2 (queued) or 0 (full); the waiters granted meanwhile.
 *
 * When nobody waits and a permit is free, it grants at once (3 commands,
 * and `TIME` once for all); expired holders are dropped only when the limit
 * looks reached, since they count against it until then and so never let
 * more in.
 */
export const ACQUIRE = `${COMMON}
local function acquire(id, most)
  if redis.call('EXISTS', queue) == 0 and redis.call('ZCARD', holders) < limit then
    redis.call('ZADD', holders, clock() + lease, id)
    return 1
  end
  reclaim()
  local queued = redis.call('ZCARD', queue)
  if queued > 0 then queued = grant() end
  if queued == 0 and redis.call('ZCARD', holders) < limit then
    redis.call('ZADD', holders, clock() + lease, id)
    return 1
  end
  if most == -1 or (most >= 0 and queued < most) then
    redis.call('ZADD', queue, redis.call('INCR', KEYS[4]), id)
    redis.call('ZADD', waiting, clock() + lease, id)
    return 2
  end
  return 0
end
local results = {}
for i = 3, #ARGV, 2 do
  results[#results + 1] = acquire(ARGV[i], tonumber(ARGV[i + 1]))
end
return { results, grants }
`;

/**
 * Releases: ARGV 3 onwards, the ids of permits. Returns `{ answers,
 * grants }`: for each release, 1, or 0 when its lease had expired (the
 * release then frees nothing of anyone else's); the waiters that got the
 * freed permits.
 */
export const RELEASE = `${COMMON}
local expiries = {}
for i = 3, #ARGV do
  expiries[i - 2] = redis.call('ZSCORE', holders, ARGV[i])
  if expiries[i - 2] then redis.call('ZREM', holders, ARGV[i]) end
end
if redis.call('EXISTS', queue) == 1 then
  reclaim()
  grant()
end
local results = {}
for i = 1, #ARGV - 2 do
  local expiry = expiries[i]
  results[i] = (expiry and tonumber(expiry) > clock()) and 1 or 0
end
return { results, grants }
`;

/**
 * ARGV 3: the id of a waiter that gives up. Whether or not it was granted
 * meanwhile, it leaves both the queue and the holders. Returns `{ had,
 * grants }`: 1 when a permit had been granted to it (and is now passed on),
 * else 0; the waiters granted.
 */
export const CANCEL = `${COMMON}
redis.call('ZREM', queue, ARGV[3])
redis.call('ZREM', waiting, ARGV[3])
local had = redis.call('ZREM', holders, ARGV[3])
reclaim()
grant()
return { had, grants }
`;

/**
 * ARGV 3: how many ids of permits follow; then those ids, then the ids of
 * waiters. Extends the lease of each, and returns
 * `{ lost permits, granted waiters, waiters gone from the queue, grants }`,
 * the granted waiters being this process's that were granted before (their
 * message was lost), the grants those the script made.
 */
export const RENEW = `${COMMON}
reclaim()
local held = tonumber(ARGV[3])
local lost, granted, gone = {}, {}, {}
for i = 4, #ARGV do
  local id = ARGV[i]
  if redis.call('ZSCORE', holders, id) then
    redis.call('ZADD', holders, now + lease, id)
    if i > 3 + held then granted[#granted + 1] = id end
  elseif i <= 3 + held then
    lost[#lost + 1] = id
  elseif redis.call('ZSCORE', queue, id) then
    redis.call('ZADD', waiting, now + lease, id)
  else
    gone[#gone + 1] = id
  end
end
grant()
return { lost, granted, gone, grants }
`;
