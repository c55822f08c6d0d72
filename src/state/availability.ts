import type { Redis } from 'ioredis'
import type { AvailabilityShare } from '../connect/availability.js'

/** The lock and state in this process: the one poller there is always holds it. */
export function memoryAvailability (now: () => number): AvailabilityShare {
  let lock: { token: string; until: number } | undefined
  let state: { json: string; until: number } | undefined
  return {
    async lock (token, ttlMs) {
      const t = now()
      if (lock && lock.until > t && lock.token !== token) return false
      lock = { token, until: t + ttlMs }
      return true
    },
    async unlock (token) {
      if (lock?.token === token) lock = undefined
    },
    async read () {
      return state && state.until > now() ? state.json : undefined
    },
    async write (json, ttlMs) {
      state = { json, until: now() + ttlMs }
    }
  }
}

// The lock is taken with SET NX PX, or renewed by its holder; released only by its holder.
const LOCK_LUA = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0`
const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

/** The lock and state in Redis, on Redis's clock, under `prefix` (`availability:lock`, `availability:state`). */
export function redisAvailability (redis: Redis, prefix: string): AvailabilityShare {
  const lockKey = `${prefix}availability:lock`
  const stateKey = `${prefix}availability:state`
  return {
    lock: async (token, ttlMs) => await redis.eval(LOCK_LUA, 1, lockKey, token, String(ttlMs)) === 1,
    unlock: async (token) => { await redis.eval(RELEASE_LUA, 1, lockKey, token) },
    read: async () => await redis.get(stateKey) ?? undefined,
    write: async (json, ttlMs) => { await redis.set(stateKey, json, 'PX', ttlMs) }
  }
}
