/**
 * Paces StartChatContact into Connect's per-account API quota (a token bucket: `rate` calls per
 * second, `burst` at once), across every replica when Redis is configured.
 *
 * Why a hand-written token bucket instead of rate-limiter-flexible: its Redis limiters count
 * fixed windows of whole seconds and can only say "try again in N ms". That lets up to twice the
 * burst through at a window edge (Connect's bucket refills continuously and throttles them), and
 * a waiting start cannot learn, in one atomic step shared by all replicas, *when* its turn comes.
 * Here each start reserves a slot on one shared schedule (GCRA: a single "theoretical arrival
 * time"): it learns its exact wait at once, sleeps until its slot, or, if the slot would come
 * after its deadline, is refused at once with a Retry-After taken from that schedule.
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import type { AbsoluteLocation, FinalizeRequestHandlerOptions, FinalizeRequestMiddleware } from '@smithy/types'
import { Overloaded } from '../errors.js'
import type { Pacer } from './chat-starter.js'
import { THROTTLED } from './errors.js'

/** What the pacer reports; src/app.ts turns these into metrics and log lines. */
export interface PacerEvents {
  /** A start got its slot after waiting this long (0 when a token was free). */
  granted? (waitedMs: number): void
  /** Starts of this process now waiting for their slot. */
  queue? (length: number): void
  /** A start was refused at once: no slot before its deadline, or the local queue is full. */
  shed? (retryAfterSeconds: number): void
  /** Connect throttled us anyway; the whole deployment now paces at `factor` of the rate. */
  slowedDown? (factor: number): void
  /** One decision taken without Redis (unreachable or too slow). */
  redisFailed? (error: unknown): void
  /** This process entered (true) or left (false) pacing alone at its share of the rate. */
  fallback? (active: boolean, details: { replicas: number; rate: number }): void
}

export interface SlowdownOptions {
  /** Multiplier applied to the rate when Connect throttles a paced call (default 0.5). */
  factor?: number
  /** Never pace below this fraction of the configured rate (default 0.125). */
  floor?: number
  /** Throttles closer together than this count as one (default 1000 ms). */
  debounceMs?: number
  /** How long the lowered rate holds without new throttles (default 10 s)... */
  holdMs?: number
  /** ...before climbing back linearly to the full rate over this long (default 30 s). */
  recoverMs?: number
}

export interface PacerOptions {
  /** StartChatContact calls per second for the whole deployment. */
  rate: number
  /** Calls allowed at once on top of the rate (Connect's burst). */
  burst: number
  /** Shared by all replicas; without it each process paces alone at the full rate. */
  redis?: Redis
  keyPrefix?: string
  /** Starts of this process allowed to wait for a slot at once; beyond it 503 at once. */
  maxQueue?: number
  /** A slot this close to the deadline is refused: the call itself needs time too. */
  callReserveMs?: number
  slowdown?: SlowdownOptions
  /** How often this replica announces itself in Redis (default 5 s; entries live 3 times as long). */
  heartbeatMs?: number
  events?: PacerEvents
}

interface Reservation { granted: boolean; waitMs: number }
interface Slowdown { factor: number; since: number }

/**
 * One shared schedule in Redis, on Redis's clock (replicas' clocks may disagree). KEYS[1] holds
 * the theoretical arrival time: when the bucket would be full again. A call is allowed at
 * TAT + interval - burst * interval; if that is within maxWait, the slot is taken. The replica
 * count (KEYS[3]) and the shared slowdown (KEYS[2]) come back with every reservation.
 */
const RESERVE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval, burst, maxWait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
local wait = tat + interval - burst * interval - now
local granted = 0
if wait <= maxWait then
  granted = 1
  tat = tat + interval
  redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1000)
end
return { granted, string.format('%.3f', wait), string.format('%.3f', tat - now), redis.call('ZCARD', KEYS[3]), redis.call('GET', KEYS[2]) }
`

type ReserveReply = [number, string, string, number, string | null]
interface PacingRedis {
  ccgPaceReserve (bucketKey: string, slowdownKey: string, replicasKey: string, intervalMs: number, burst: number, maxWaitMs: number): Promise<ReserveReply>
}

/** The same schedule in memory, for a process without Redis or while Redis is unreachable. */
class LocalBucket {
  tat = 0
  reserve (now: number, intervalMs: number, burst: number, maxWaitMs: number): Reservation {
    const tat = Math.max(this.tat, now)
    const waitMs = tat + intervalMs - burst * intervalMs - now
    if (waitMs > maxWaitMs) return { granted: false, waitMs }
    this.tat = tat + intervalMs
    return { granted: true, waitMs: Math.max(0, waitMs) }
  }
}

export class TokenBucketPacer implements Pacer {
  private readonly id = randomUUID()
  private readonly local = new LocalBucket()
  /** This process's calls by the time they are actually sent (see beforeAttempt). */
  private readonly sent = new LocalBucket()
  private readonly burst: number
  private readonly keys: { bucket: string; slowdown: string; replicas: string }
  private readonly slow: Required<SlowdownOptions>
  private slowdown: Slowdown | undefined
  private waiting = 0
  private knownReplicas = 1
  private alone = false
  /** Local time at which the shared schedule, as last seen, has handed out all its slots. */
  private sharedHorizon = 0
  private readonly heartbeat: NodeJS.Timeout | undefined
  private readonly onReady = () => { void this.beat() }

  constructor (private readonly options: PacerOptions) {
    if (!(options.rate > 0) || !(options.burst >= 1)) throw new RangeError('pacer: rate must be > 0 and burst >= 1')
    // One token of the burst is held back: it absorbs network jitter, so that calls sent exactly
    // on schedule but arriving closer together than they left are not throttled by Connect.
    this.burst = options.burst >= 2 ? Math.floor(options.burst) - 1 : 1
    const prefix = `${options.keyPrefix ?? ''}pacing:`
    this.keys = { bucket: `${prefix}bucket`, slowdown: `${prefix}slowdown`, replicas: `${prefix}replicas` }
    this.slow = { factor: 0.5, floor: 0.125, debounceMs: 1_000, holdMs: 10_000, recoverMs: 30_000, ...options.slowdown }
    const redis = options.redis
    if (redis) {
      if (typeof (redis as unknown as Partial<PacingRedis>).ccgPaceReserve !== 'function') {
        redis.defineCommand('ccgPaceReserve', { numberOfKeys: 3, lua: RESERVE_LUA })
      }
      redis.on('ready', this.onReady)
      if (redis.status === 'ready') void this.beat()
      this.heartbeat = setInterval(() => { void this.beat() }, this.heartbeatMs).unref()
    }
  }

  private get heartbeatMs (): number { return this.options.heartbeatMs ?? 5_000 }

  /** Replicas seen in Redis recently (this one included); 1 without Redis. */
  get replicas (): number { return this.knownReplicas }

  /** The pace right now, as a fraction of the configured rate (1 unless Connect throttled us). */
  get factor (): number { return this.factorAt(Date.now()) }

  async acquire (deadline: number, signal: AbortSignal): Promise<void> {
    const started = Date.now()
    if (this.waiting >= (this.options.maxQueue ?? Infinity)) {
      throw this.shed(this.waiting * this.intervalMs(1))
    }
    this.setWaiting(+1)
    try {
      const maxWaitMs = deadline - started - (this.options.callReserveMs ?? 0)
      const slot = await this.reserve(maxWaitMs)
      if (!slot.granted) throw this.shed(slot.waitMs)
      // Counted from the answer, not from the ask: a little late is safe, early is throttled.
      if (slot.waitMs > 0) await sleep(slot.waitMs, undefined, { signal })
      this.options.events?.granted?.(Date.now() - started)
    } finally {
      this.setWaiting(-1)
    }
  }

  onThrottled (): void {
    const now = Date.now()
    if (this.slowdown && now - this.slowdown.since < this.slow.debounceMs) return
    const factor = Math.max(this.slow.floor, this.factorAt(now) * this.slow.factor)
    this.slowdown = { factor, since: now }
    this.options.events?.slowedDown?.(factor)
    // Best effort: a replica that cannot tell the others still slows down itself.
    this.options.redis?.set(this.keys.slowdown, `${factor}:${now}`, 'PX', this.slow.holdMs + this.slow.recoverMs)
      .catch(() => {})
  }

  /** The retry itself is paced in beforeAttempt(); a throttled attempt also slows the pace. */
  onRetry (errorName: string): void {
    if (THROTTLED.has(errorName)) this.onThrottled()
  }

  /**
   * Right before each HTTP attempt, after the SDK has built and signed it. A retry spends quota
   * like a first attempt, so it reserves a slot of its own (the first attempt did in acquire()).
   * Then every attempt passes a bucket kept on the time calls actually leave this process: a busy
   * event loop can hold paced calls back and release them together, and Connect's bucket holds no
   * more than its burst however long they were held.
   */
  async beforeAttempt (attempt: number, deadline: number, signal: AbortSignal): Promise<void> {
    if (attempt > 1) await this.acquire(deadline, signal)
    const now = Date.now()
    const slot = this.sent.reserve(now, this.intervalMs(1), this.burst, deadline - now - (this.options.callReserveMs ?? 0))
    if (!slot.granted) throw this.shed(slot.waitMs)
    if (slot.waitMs > 0) await sleep(slot.waitMs, undefined, { signal })
  }

  async close (): Promise<void> {
    clearInterval(this.heartbeat)
    const redis = this.options.redis
    if (!redis) return
    redis.off('ready', this.onReady)
    await redis.zrem(this.keys.replicas, this.id).catch(() => {})
  }

  private async reserve (maxWaitMs: number): Promise<Reservation> {
    const now = Date.now()
    const redis = this.options.redis as (Redis & PacingRedis) | undefined
    if (redis) {
      try {
        const [granted, wait, horizon, replicas, shared] = await redis.ccgPaceReserve(
          this.keys.bucket, this.keys.slowdown, this.keys.replicas, this.intervalMs(1), this.burst, Math.min(maxWaitMs, 1e12))
        if (replicas >= 1) this.knownReplicas = replicas
        // From the answer's arrival: a horizon seen late is safe, one seen early is not.
        this.sharedHorizon = Date.now() + Number(horizon)
        this.adoptSlowdown(shared)
        this.setAlone(false)
        return { granted: granted === 1, waitMs: Math.max(0, Number(wait)) }
      } catch (error) {
        this.options.events?.redisFailed?.(error)
        this.setAlone(true)
      }
    }
    const share = this.redisShare()
    return this.local.reserve(now, this.intervalMs(share), Math.max(1, Math.floor(this.burst * share)), maxWaitMs)
  }

  /** Without Redis configured a process has the whole rate; after losing it, its share. */
  private redisShare (): number {
    return this.options.redis ? 1 / this.knownReplicas : 1
  }

  private setAlone (alone: boolean): void {
    if (alone === this.alone) return
    this.alone = alone
    const share = this.redisShare()
    if (alone) {
      // Slots the shared schedule already handed out (to every replica) are still to be used:
      // this replica starts on its own only after them, with an empty bucket.
      const burst = Math.max(1, Math.floor(this.burst * share))
      this.local.tat = Math.max(this.local.tat, this.sharedHorizon + burst * this.intervalMs(share))
    }
    this.options.events?.fallback?.(alone, { replicas: this.knownReplicas, rate: alone ? this.options.rate * share : this.options.rate })
  }

  private intervalMs (share: number): number {
    return 1000 / (this.options.rate * share * this.factorAt(Date.now()))
  }

  private factorAt (now: number): number {
    const s = this.slowdown
    if (!s) return 1
    const recovering = now - s.since - this.slow.holdMs
    if (recovering <= 0) return s.factor
    return Math.min(1, s.factor + (1 - s.factor) * recovering / this.slow.recoverMs)
  }

  /** The newer of ours and the deployment's: our own write may have failed. */
  private adoptSlowdown (raw: string | null): void {
    const [factor, since] = (raw ?? '').split(':').map(Number)
    if (factor === undefined || since === undefined || !(factor > 0 && factor <= 1) || !Number.isFinite(since)) return
    if (!this.slowdown || since > this.slowdown.since) this.slowdown = { factor, since }
  }

  private shed (waitMs: number): Overloaded {
    const retryAfterSeconds = Math.max(1, Math.ceil(waitMs / 1000))
    this.options.events?.shed?.(retryAfterSeconds)
    return new Overloaded('Too many chats are starting right now; please try again shortly', { retryAfterSeconds })
  }

  private setWaiting (delta: number): void {
    this.waiting += delta
    this.options.events?.queue?.(this.waiting)
  }

  /** Announces this replica and counts the live ones: a replica's share if Redis goes away. */
  private async beat (): Promise<void> {
    const redis = this.options.redis
    if (!redis || redis.status !== 'ready') return
    const now = Date.now()
    const ttl = 3 * this.heartbeatMs
    try {
      const replies = await redis.multi()
        .zadd(this.keys.replicas, now, this.id)
        .zremrangebyscore(this.keys.replicas, '-inf', now - ttl)
        .zcard(this.keys.replicas)
        .pexpire(this.keys.replicas, ttl)
        .exec()
      const count = Number(replies?.[2]?.[1])
      if (count >= 1) this.knownReplicas = count
    } catch { /* keep the last count; the next beat tries again */ }
  }
}

export const PACE_ATTEMPTS: FinalizeRequestHandlerOptions & AbsoluteLocation = {
  step: 'finalizeRequest', priority: 'low', name: 'paceAttempts'
}

/**
 * SDK middleware for one StartChatContact command: inside the SDK's retry loop and after signing,
 * so it runs once per HTTP attempt just before it is sent. Unpaced retries would land on a bucket
 * Connect just said was empty, be throttled again, and crowd out the calls paced behind them.
 */
export function paceAttempts<Input extends object, Output extends object> (pacer: Pacer, deadline: number, signal: AbortSignal): FinalizeRequestMiddleware<Input, Output> {
  let attempt = 0
  return (next) => async (args) => {
    await pacer.beforeAttempt?.(++attempt, deadline, signal)
    return next(args)
  }
}

export function createPacer (options: PacerOptions): TokenBucketPacer {
  return new TokenBucketPacer(options)
}
