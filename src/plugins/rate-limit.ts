import rateLimit, { type FastifyRateLimitStore, type FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { systemClock, type Clock } from '../clock.js'
import { RateLimited } from '../errors.js'
import { widgetLabel } from '../metrics.js'
import { LOCAL_WINDOW_ENTRIES, memoryRateWindows, type RateCount, type RateWindows } from '../state/rate-windows.js'

export interface RateLimitOptions {
  /** Chat starts per client per window (RATE_LIMIT_MAX), and the window. */
  max: number
  timeWindowMs: number
  /** Where windows are counted; in this process by default. */
  windows?: RateWindows
  /** With shared windows: where they are counted while the shared store fails, and its name for the log (Redis, DynamoDB). */
  fallback?: { windows: RateWindows; storeName: string }
  /** The time of the in-process windows (the system clock by default). */
  clock?: Clock
}

/**
 * Clients the shared store has already put over the limit, until their window ends. A fixed window
 * that is exceeded stays exceeded until it expires, so this replica refuses them on its own meanwhile:
 * a flood from one address costs one shared call per window, not one per request. The count shown is
 * the last one the store gave; a limit raised by a widget reload applies at once (the stored count is
 * compared with the current max).
 */
class OverLimit {
  private readonly until = new Map<string, { current: number; resetAt: number }>()
  constructor (private readonly now: () => number) {}

  get (key: string, max: number): RateCount | undefined {
    const entry = this.until.get(key)
    if (entry === undefined) return undefined
    const ttl = entry.resetAt - this.now()
    if (ttl > 0 && entry.current > max) return { current: entry.current, ttl }
    this.until.delete(key)
    return undefined
  }

  set (key: string, current: number, ttl: number) {
    // Bounded like the local windows: the oldest entry goes first.
    if (!this.until.has(key) && this.until.size >= LOCAL_WINDOW_ENTRIES) this.until.delete(this.until.keys().next().value!)
    this.until.set(key, { current, resetAt: this.now() + ttl })
  }
}

/** Logs once when the shared store goes away and once when it is back; counts every decision taken without it. */
function outageTracker (log: FastifyBaseLogger, storeName: string, onFailOpen: () => void) {
  let down = false
  return {
    failed (err: Error) {
      onFailOpen()
      if (down) return
      down = true
      log.warn({ reason: err.message }, `${storeName} unreachable: the per-client rate limit is counted in this process only until it is back`)
    },
    succeeded () {
      if (!down) return
      down = false
      log.info(`${storeName} reachable again: the per-client rate limit is shared again`)
    }
  }
}

/**
 * A store for @fastify/rate-limit (its documented custom-store interface) over our windows. Shared
 * windows that fail are counted in this process instead (fail open: the request is served at once,
 * and the limit loosens from one shared limit to one per replica, never to none). The plugin's own
 * skipOnError would let every request through unlimited while the store is away.
 */
function windowStore (windows: RateWindows, fallback: RateWindows | undefined, outage: ReturnType<typeof outageTracker>, clock: Clock): FastifyRateLimitStoreCtor {
  const over = new OverLimit(() => clock.now())
  const store: FastifyRateLimitStore = {
    incr (key, callback, timeWindow, max) {
      if (!fallback) {
        void windows.incr(key, timeWindow).then((counted) => callback(null, counted), callback)
        return
      }
      const refused = over.get(key, max)
      if (refused) {
        callback(null, refused)
        return
      }
      void windows.incr(key, timeWindow).then(({ current, ttl }) => {
        outage.succeeded()
        if (current > max) over.set(key, current, ttl)
        callback(null, { current, ttl })
      }, async (err: Error) => {
        outage.failed(err)
        callback(null, await fallback.incr(key, timeWindow))
      })
    },
    child: () => store
  }
  return class { constructor () { return store } } as unknown as FastifyRateLimitStoreCtor
}

/**
 * Per-client (IP) limit for the routes that ask for it (`config.rateLimit` on the route; health,
 * metrics and docs never do), in shared state when configured so one limit holds across replicas.
 * Trouble there never blocks a request: the client fails fast (see src/redis.ts, src/dynamodb.ts) and we fail open.
 */
async function rateLimitPlugin (app: FastifyInstance, { max, timeWindowMs, windows, fallback, clock = systemClock }: RateLimitOptions) {
  const outage = outageTracker(app.log, fallback?.storeName ?? 'shared state', () => app.metrics.redisFailOpen.inc({ use: 'rate_limit' }))

  await app.register(rateLimit, {
    global: false,
    max,
    timeWindow: timeWindowMs,
    cache: LOCAL_WINDOW_ENTRIES,
    // One canonical key per client (see client-address.ts), known even when the socket is gone; a
    // widget with a limit of its own counts apart, the others share the default limit.
    keyGenerator: (request) => {
      const client = request.clientKey || 'unknown'
      return request.widget?.rateLimit ? `widget:${request.widget.id}:${client}` : client
    },
    // A store error must never refuse or fail a request.
    skipOnError: true,
    store: windowStore(windows ?? memoryRateWindows(() => clock.now()), fallback?.windows, outage, clock),
    onExceeded: (request) => app.metrics.rateLimited.inc(widgetLabel(request.widget?.named)),
    errorResponseBuilder: (_request, context) => new RateLimited(
      `Too many chat starts from this address; retry in ${context.after}`,
      { retryAfterSeconds: Math.max(1, Math.ceil(context.ttl / 1000)) }
    )
  })
}

export default fp(rateLimitPlugin, { name: 'rate-limit', dependencies: ['widget', 'client-address'], decorators: { fastify: ['metrics'] } })
