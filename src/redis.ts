import { Redis } from 'ioredis'

export interface RedisOptions { url: string; keyPrefix?: string; commandTimeoutMs?: number }

/**
 * A Redis client that never makes a request wait long: no offline queue (commands fail at once
 * while disconnected), bounded connect and command times, and reconnection in the background.
 * Callers treat a failure as "Redis unavailable": rate limits and pacing fall back to this process,
 * state that must be shared to be safe fails closed (see shared-state.ts).
 */
export function createRedis ({ url, commandTimeoutMs = 250 }: RedisOptions): Redis {
  return new Redis(url, {
    enableOfflineQueue: false,
    connectTimeout: 500,
    commandTimeout: commandTimeoutMs,
    maxRetriesPerRequest: 0,
    lazyConnect: false,
    // Reconnect forever, backing off to 2 s between tries.
    retryStrategy: (times) => Math.min(times * 100, 2_000)
  })
}
