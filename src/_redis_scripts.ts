/**
 * The Lua scripts of `RedisLimiter`. Every script runs atomically in Redis,
 * reads the time from Redis (`TIME`), first drops the leases that expired
 * (holders and waiters of processes that died or froze), and then grants
 * free permits to the oldest waiters, publishing each grant on the channel of
 * the process that waits (`<prefix>wake:<token>`, the token being the part
 * of the id before `:`).
 *
 * Keys, all under one hash tag so that a cluster keeps them on one node
 * (they empty themselves; only the arrivals counter stays):
 * 1. `holders`, a sorted set: permit id -> lease expiry (ms, Redis time);
 * 2. `queue`, a sorted set: waiter id -> arrival number (FIFO order);
 * 3. `waiting`, a sorted set: waiter id -> lease expiry of the waiter;
 * 4. `arrivals`, a counter that numbers the arrivals.
 *
 * Arguments common to every script: `limit`, `lease` (ms), `prefix`.
 */

const COMMON = `
local holders, queue, waiting = KEYS[1], KEYS[2], KEYS[3]
local limit, lease, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local function reclaim()
  redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)
end

-- Drops the waiters whose lease ran out, then grants free permits to the
-- oldest; only called when someone waits.
local function grant()
  local dead = redis.call('ZRANGEBYSCORE', waiting, '-inf', now)
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
    free = free - 1
  end
  return redis.call('ZCARD', queue)
end
`;

/**
 * ARGV 4: the id, 5: `wait` (queue when no permit is free) or `try`, 6: the
 * most waiters (`-1`: no bound). Returns 1 (granted), 2 (queued) or 0
 * (full).
 */
export const ACQUIRE = `${COMMON}
local id, mode, most = ARGV[4], ARGV[5], tonumber(ARGV[6])
reclaim()
local queued = redis.call('ZCARD', queue)
if queued > 0 then queued = grant() end
if queued == 0 and redis.call('ZCARD', holders) < limit then
  redis.call('ZADD', holders, now + lease, id)
  return 1
end
if mode == 'wait' and (most < 0 or queued < most) then
  redis.call('ZADD', queue, redis.call('INCR', KEYS[4]), id)
  redis.call('ZADD', waiting, now + lease, id)
  return 2
end
return 0
`;

/**
 * ARGV 4: the id of a permit. Returns 1, or 0 when its lease had expired
 * (the release then frees nothing).
 */
export const RELEASE = `${COMMON}
local expiry = redis.call('ZSCORE', holders, ARGV[4])
redis.call('ZREM', holders, ARGV[4])
if redis.call('EXISTS', queue) == 1 then
  reclaim()
  grant()
end
if expiry and tonumber(expiry) > now then return 1 end
return 0
`;

/**
 * ARGV 4: the id of a waiter that gives up. Whether or not it was granted
 * meanwhile, it leaves both the queue and the holders. Returns 1 when a
 * permit had been granted to it (and is now passed on).
 */
export const CANCEL = `${COMMON}
redis.call('ZREM', queue, ARGV[4])
redis.call('ZREM', waiting, ARGV[4])
local had = redis.call('ZREM', holders, ARGV[4])
reclaim()
grant()
return had
`;

/**
 * ARGV 4: how many ids of permits follow; then those ids, then the ids of
 * waiters. Extends the lease of each, and returns
 * `{ lost permits, granted waiters, waiters gone from the queue }`.
 */
export const RENEW = `${COMMON}
reclaim()
local held = tonumber(ARGV[4])
local lost, granted, gone = {}, {}, {}
for i = 5, #ARGV do
  local id = ARGV[i]
  if redis.call('ZSCORE', holders, id) then
    redis.call('ZADD', holders, now + lease, id)
    if i > 4 + held then granted[#granted + 1] = id end
  elseif i <= 4 + held then
    lost[#lost + 1] = id
  elseif redis.call('ZSCORE', queue, id) then
    redis.call('ZADD', waiting, now + lease, id)
  else
    gone[#gone + 1] = id
  end
end
grant()
return { lost, granted, gone }
`;
