import type { Redis } from 'ioredis'

/** One fixed window's count so far, and the milliseconds left of it. */
export interface RateCount { current: number; ttl: number }

/**
 * Fixed rate windows, one per key: what the per-client rate limit counts in. A window starts at its
 * key's first hit and lasts `windowMs`; the next hit after it starts a new one. A shared store's
 * incr rejects when the store fails (the caller counts in this process meanwhile).
 */
export interface RateWindows {
  incr (key: string, windowMs: number): Promise<RateCount>
}

/** An attacker with many addresses must not be able to evict other clients' counters quickly. */
export const LOCAL_WINDOW_ENTRIES = 50_000

/** Fixed windows in this process: the store without shared state, and the fallback while it is away. */
export function memoryRateWindows (now: () => number): RateWindows {
  const windows = new Map<string, { count: number; resetAt: number }>()
  return {
    async incr (key, windowMs) {
      const t = now()
      let w = windows.get(key)
      if (!w || w.resetAt <= t) {
        windows.delete(key)
        // Bounded: the oldest entry (first inserted) goes first.
        if (windows.size >= LOCAL_WINDOW_ENTRIES) windows.delete(windows.keys().next().value!)
        w = { count: 0, resetAt: t + windowMs }
        windows.set(key, w)
      }
      w.count++
      return { current: w.count, ttl: w.resetAt - t }
    }
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

/** Windows in Redis, one key each (`<keyPrefix>rate-limit:<key>`), counted by one script (no read-then-write). */
export function redisRateWindows (redis: Redis, keyPrefix: string): RateWindows {
  const prefix = `${keyPrefix}rate-limit:`
  const counting = redis as Redis & Partial<CountingRedis>
  if (typeof counting.ccgRateIncr !== 'function') counting.defineCommand('ccgRateIncr', { numberOfKeys: 1, lua: INCR_LUA })
  return {
    async incr (key, windowMs) {
      const [current, ttl] = await (counting as Redis & CountingRedis).ccgRateIncr(prefix + key, windowMs)
      return { current, ttl }
    }
  }
}
