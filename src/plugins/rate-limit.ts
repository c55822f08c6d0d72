import rateLimit, { type FastifyRateLimitStore, type FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Config } from '../config.js'
import { RateLimited } from '../errors.js'

// The plugin's own stores (its Lua script, its LRU), used directly so a Redis failure can be seen:
// the plugin's skipOnError would swallow it silently and let every request through unlimited.
type RedisStoreCtor = new (continueExceeding: boolean, exponentialBackoff: boolean, redis: Redis, key: string) => FastifyRateLimitStore
type LocalStoreCtor = new (continueExceeding: boolean, exponentialBackoff: boolean, cache: number) => FastifyRateLimitStore
const requirePlugin = createRequire(import.meta.url)
const RedisStore = requirePlugin('@fastify/rate-limit/store/RedisStore') as RedisStoreCtor
const LocalStore = requirePlugin('@fastify/rate-limit/store/LocalStore') as LocalStoreCtor

/** An attacker with many addresses must not be able to evict other clients' counters quickly. */
const LOCAL_CACHE_ENTRIES = 50_000

export interface RateLimitOptions {
  config: Config
  redis?: Redis
  /** Route URLs that are limited; everything else (health, metrics, docs) never is. */
  routes: string[]
}

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
 * Counts in Redis; when Redis fails, counts in this process instead (fail open: the request is
 * served at once, and the limit loosens from one shared limit to one per replica, never to none).
 */
function redisWithLocalFallback (redis: Redis, nameSpace: string, outage: ReturnType<typeof outageTracker>): FastifyRateLimitStoreCtor {
  const wrap = (shared: FastifyRateLimitStore, local: FastifyRateLimitStore): FastifyRateLimitStore => ({
    incr (key, callback, timeWindow, max) {
      shared.incr(key, (err, result) => {
        if (!err) {
          outage.succeeded()
          callback(null, result)
          return
        }
        outage.failed(err)
        local.incr(key, callback, timeWindow, max)
      }, timeWindow, max)
    },
    child: (routeOptions) => wrap(shared.child(routeOptions), local.child(routeOptions))
  })
  return class {
    constructor () {
      return wrap(new RedisStore(false, false, redis, nameSpace), new LocalStore(false, false, LOCAL_CACHE_ENTRIES))
    }
  } as unknown as FastifyRateLimitStoreCtor
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
 * Per-client (IP) limit on chat starts, in Redis when configured so one limit holds across replicas.
 * Redis trouble never blocks a request: the client fails fast (see src/redis.ts) and we fail open.
 */
async function rateLimitPlugin (app: FastifyInstance, { config, redis, routes }: RateLimitOptions) {
  if (redis) await settled(redis, 1_000)
  const outage = outageTracker(app.log, () => app.metrics.redisFailOpen.inc({ use: 'rate_limit' }))

  await app.register(rateLimit, {
    global: false,
    max: config.RATE_LIMIT_MAX,
    timeWindow: config.rateLimitWindowMs,
    cache: LOCAL_CACHE_ENTRIES,
    // One canonical key per client (see client-address.ts), known even when the socket is gone.
    keyGenerator: (request) => request.clientKey || 'unknown',
    // A store error must never refuse or fail a request.
    skipOnError: true,
    ...(redis ? { store: redisWithLocalFallback(redis, `${config.REDIS_KEY_PREFIX}rate-limit:`, outage) } : {}),
    onExceeded: () => app.metrics.rateLimited.inc(),
    errorResponseBuilder: (_request, context) => new RateLimited(
      `Too many chat starts from this address; retry in ${context.after}`,
      { retryAfterSeconds: Math.max(1, Math.ceil(context.ttl / 1000)) }
    )
  })

  const limited = new Set(routes)
  const limit = app.rateLimit()
  app.addHook('onRoute', (route) => {
    if (!limited.has(route.url)) return
    const existing = route.onRequest
    route.onRequest = [...(Array.isArray(existing) ? existing : existing ? [existing] : []), limit]
  })
}

export default fp(rateLimitPlugin, { name: 'rate-limit' })
