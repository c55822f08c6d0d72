import rateLimit, { type FastifyRateLimitStore, type FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { systemClock, type Clock } from '../clock.js'
import type { Config } from '../config.js'
import { RateLimited } from '../errors.js'
import { widgetLabel } from '../metrics.js'

/** An attacker with many addresses must not be able to evict other clients' counters quickly. */
const LOCAL_CACHE_ENTRIES = 50_000

export interface RateLimitOptions {
  config: Config
  redis?: Redis
  /** The time of the in-process windows (the system clock by default). */
  clock?: Clock
}

type Counted = { current: number; ttl: number }

/** Fixed windows in this process: the fallback while Redis is away, and the store without Redis. */
class LocalWindows {
  private readonly windows = new Map<string, { count: number; resetAt: number }>()
  constructor (private readonly clock: Clock) {}
  incr (key: string, timeWindow: number): Counted {
    const now = this.clock.now()
    let w = this.windows.get(key)
    if (!w || w.resetAt <= now) {
      this.windows.delete(key)
      // Bounded: the oldest entry (first inserted) goes first.
      if (this.windows.size >= LOCAL_CACHE_ENTRIES) this.windows.delete(this.windows.keys().next().value!)
      w = { count: 0, resetAt: now + timeWindow }
      this.windows.set(key, w)
    }
    w.count++
    return { current: w.count, ttl: w.resetAt - now }
  }
}

/**
 * Clients Redis has already put over the limit, until their window ends. A fixed window that is
 * exceeded stays exceeded until it expires, so this replica refuses them on its own meanwhile: a
 * flood from one address costs one Redis call per window, not one per request. The count shown is
 * the last one Redis gave; a limit raised by a widget reload applies at once (the stored count is
 * compared with the current max).
 */
class OverLimit {
  private readonly until = new Map<string, { current: number; resetAt: number }>()
  get (key: string, max: number): Counted | undefined {
    const entry = this.until.get(key)
    if (entry === undefined) return undefined
    const ttl = entry.resetAt - Date.now()
    if (ttl > 0 && entry.current > max) return { current: entry.current, ttl }
    this.until.delete(key)
    return undefined
  }

  set (key: string, current: number, ttl: number) {
    // Bounded like the local windows: the oldest entry goes first.
    if (!this.until.has(key) && this.until.size >= LOCAL_CACHE_ENTRIES) this.until.delete(this.until.keys().next().value!)
    this.until.set(key, { current, resetAt: Date.now() + ttl })
  }
}

// One fixed window per key on Redis's clock: the count, and what is left of the window.
const INCR_LUA = `
local current = redis.call('INCR', KEYS[1])
if current == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return { current, ttl }`

interface CountingRedis { ccgRateIncr (key: string, windowMs: number): Promise<[number, number]> }

/** Logs once when Redis goes away and once when it is back; counts every decision taken without it. */
function outageTracker (log: FastifyBaseLogger, onFailOpen: () => void) {
  let down = false
  return {
    failed (err: Error) {
      onFailOpen()
      if (down) return
      down = true
      log.warn({ reason: err.message }, 'Redis unreachable: the per-client rate limit is counted in this process only until it is back')
    },
    succeeded () {
      if (!down) return
      down = false
      log.info('Redis reachable again: the per-client rate limit is shared again')
    }
  }
}

/**
 * A store for @fastify/rate-limit (its documented custom-store interface): counts in Redis, and when
 * Redis fails, in this process instead (fail open: the request is served at once, and the limit
 * loosens from one shared limit to one per replica, never to none). The plugin's own skipOnError
 * would let every request through unlimited while Redis is away.
 */
function sharedStore (redis: Redis | undefined, nameSpace: string, outage: ReturnType<typeof outageTracker>, clock: Clock): FastifyRateLimitStoreCtor {
  const counting = redis as (Redis & Partial<CountingRedis>) | undefined
  if (counting && typeof counting.ccgRateIncr !== 'function') counting.defineCommand('ccgRateIncr', { numberOfKeys: 1, lua: INCR_LUA })
  const local = new LocalWindows(clock)
  const over = new OverLimit()
  const store: FastifyRateLimitStore = {
    incr (key, callback, timeWindow, max) {
      if (!counting) {
        callback(null, local.incr(key, timeWindow))
        return
      }
      const refused = over.get(key, max)
      if (refused) {
        callback(null, refused)
        return
      }
      (counting as Redis & CountingRedis).ccgRateIncr(nameSpace + key, timeWindow).then(([current, ttl]) => {
        outage.succeeded()
        if (current > max) over.set(key, current, ttl)
        callback(null, { current, ttl })
      }, (err: Error) => {
        outage.failed(err)
        callback(null, local.incr(key, timeWindow))
      })
    },
    child: () => store
  }
  return class { constructor () { return store } } as unknown as FastifyRateLimitStoreCtor
}

/** Gives a fresh client a moment to connect, so the first requests after start-up are shared too. */
async function settled (redis: Redis, ms: number) {
  if (redis.status === 'ready') return
  const stop = new AbortController()
  await Promise.race([
    once(redis, 'ready', { signal: stop.signal }).catch(() => {}),
    sleep(ms, undefined, { signal: stop.signal }).catch(() => {})
  ])
  stop.abort()
}

/**
 * Per-client (IP) limit for the routes that ask for it (`config.rateLimit` on the route; health,
 * metrics and docs never do), in Redis when configured so one limit holds across replicas. Redis trouble never blocks a request: the client fails fast (see src/redis.ts) and we fail open.
 */
async function rateLimitPlugin (app: FastifyInstance, { config, redis, clock = systemClock }: RateLimitOptions) {
  if (redis) await settled(redis, 1_000)
  const outage = outageTracker(app.log, () => app.metrics.redisFailOpen.inc({ use: 'rate_limit' }))

  await app.register(rateLimit, {
    global: false,
    max: config.RATE_LIMIT_MAX,
    timeWindow: config.rateLimitWindowMs,
    cache: LOCAL_CACHE_ENTRIES,
    // One canonical key per client (see client-address.ts), known even when the socket is gone; a
    // widget with a limit of its own counts apart, the others share the default limit.
    keyGenerator: (request) => {
      const client = request.clientKey || 'unknown'
      return request.widget?.rateLimit ? `widget:${request.widget.id}:${client}` : client
    },
    // A store error must never refuse or fail a request.
    skipOnError: true,
    store: sharedStore(redis, `${config.REDIS_KEY_PREFIX}rate-limit:`, outage, clock),
    onExceeded: (request) => app.metrics.rateLimited.inc(widgetLabel(request.widget?.named)),
    errorResponseBuilder: (_request, context) => new RateLimited(
      `Too many chat starts from this address; retry in ${context.after}`,
      { retryAfterSeconds: Math.max(1, Math.ceil(context.ttl / 1000)) }
    )
  })
}

export default fp(rateLimitPlugin, { name: 'rate-limit', dependencies: ['widget', 'client-address'], decorators: { fastify: ['metrics'] } })
