/**
 * The replicas pacing together: each announces itself in a Redis sorted set every heartbeat and
 * counts the live ones. The count is a replica's share of the rate when Redis goes away.
 */
import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { Clock, Timer } from '../clock.js'

export class ReplicaRoster {
  readonly id = randomUUID()
  private known = 1
  private heartbeat: Timer | undefined
  private readonly onReady = () => { void this.beat() }

  /** Entries live three heartbeats: a replica that stopped beating drops out after that. */
  constructor (private readonly redis: Redis, private readonly key: string, private readonly heartbeatMs: number, private readonly clock: Clock) {
    redis.on('ready', this.onReady)
    if (redis.status === 'ready') void this.beat()
    const every = () => {
      this.heartbeat = clock.setTimeout(() => { void this.beat(); every() }, heartbeatMs, { unref: true })
    }
    every()
  }

  /** Replicas seen in Redis recently, this one included. */
  get count (): number { return this.known }

  /** A count Redis gave along with another answer. */
  saw (replicas: number): void {
    if (replicas >= 1) this.known = replicas
  }

  /** Announces this replica and counts the live ones. */
  async beat (): Promise<void> {
    const redis = this.redis
    if (redis.status !== 'ready') return
    const now = this.clock.now()
    const ttl = 3 * this.heartbeatMs
    try {
      const replies = await redis.multi()
        .zadd(this.key, now, this.id)
        .zremrangebyscore(this.key, '-inf', now - ttl)
        .zcard(this.key)
        .pexpire(this.key, ttl)
        .exec()
      this.saw(Number(replies?.[2]?.[1]))
    } catch { /* keep the last count; the next beat tries again */ }
  }

  /** Stops beating and leaves the roster at once. */
  async close (): Promise<void> {
    this.clock.clearTimeout(this.heartbeat)
    this.redis.off('ready', this.onReady)
    await this.redis.zrem(this.key, this.id).catch(() => {})
  }
}
