import { Redis } from 'ioredis'

export interface RedisOptions { url: string; keyPrefix?: string }

/**
 * A Redis client that never makes a request wait long: no offline queue (commands fail at once
 * while disconnected), bounded connect and command times, and reconnection in the background.
 * Callers treat a failure as "Redis unavailable" and fail open.
 */
export function createRedis ({ url }: RedisOptions): Redis {
  return new Redis(url, {
    enableOfflineQueue: false,
    connectTimeout: 500,
    commandTimeout: 250,
    maxRetriesPerRequest: 0,
    lazyConnect: false,
    // Reconnect forever, backing off to 2 s between tries.
    retryStrategy: (times) => Math.min(times * 100, 2_000)
  })
}
