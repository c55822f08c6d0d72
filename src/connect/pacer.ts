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
 *
 * The configured rate is only a starting point: the quota is shared with every other system on
 * the account. When Connect throttles a paced call, the rate drops to what Connect accepted over
 * the last moment (see pacing-schedule.ts), every replica re-plans the starts already waiting at
 * once (those whose new slot falls past their deadline are told 503 now, not after a futile
 * wait), and the rate climbs back step by step once the throttles stop.
 */
import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { abortError, delay, systemClock, type Clock, type Timer } from '../clock.js'
import { Overloaded } from '../errors.js'
import type { Pacer } from './chat-starter.js'
import { THROTTLED } from './errors.js'
import {
  ACCEPTED_LUA, LEARN_LUA, LocalSchedule, MAX_CUT, MIN_CUT, RELEASE_LUA, RESERVE_LUA, lowerRate, stretch,
  type LearnReply, type ReserveReply, type Slot
} from './pacing-schedule.js'

export interface RateChange {
  /** throttled: this replica saw Connect throttle; shared: another replica did; recovering: a step back up. */
  reason: 'throttled' | 'shared' | 'recovering'
  configured: number
  /** Calls Connect accepted per second over the window, when this replica measured it. */
  measured?: number
  /** Starts of this replica moved to a later slot. */
  replanned: number
  /** Starts of this replica whose new slot fell past their deadline: refused at once. */
  shed: number
}

/** What the pacer reports; src/app.ts turns these into metrics and log lines. */
export interface PacerEvents {
  /** A start got its slot after waiting this long (0 when a token was free). */
  granted? (waitedMs: number): void
  /** Starts of this process now waiting for their slot. */
  queue? (length: number): void
  /** A start was refused at once: no slot before its deadline, or the local queue is full. */
  shed? (retryAfterSeconds: number): void
  /** The deployment's pace changed, in calls per second (one event per change). */
  rateChanged? (rate: number, change: RateChange): void
  /** A start left (its signal aborted) while it waited for its slot. */
  abandoned? (): void
  /** Slots given back by starts that left were folded back into the schedule. */
  returned? (slots: number): void
  /** One decision taken without Redis (unreachable or too slow). */
  redisFailed? (error: unknown): void
  /** This process entered (true) or left (false) pacing alone at its share of the rate. */
  fallback? (active: boolean, details: { replicas: number; rate: number }): void
}

export interface LearningOptions {
  /** Accepted calls are counted over this window when Connect throttles (default 1000 ms). */
  windowMs?: number
  /** Never pace below this fraction of the configured rate (default 0.125). */
  floor?: number
  /** Throttles closer together than this count as one (default 1000 ms). */
  debounceMs?: number
  /** How long a lowered rate holds without new throttles (default 10 s)... */
  holdMs?: number
  /** ...before it climbs back by `step` of the configured rate every `stepMs` (defaults 0.05, 1500 ms). */
  stepMs?: number
  step?: number
}

export interface PacerOptions {
  /** StartChatContact calls per second for the whole deployment, until Connect says otherwise. */
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
  learning?: LearningOptions
  /** How often this replica announces itself in Redis (default 5 s; entries live 3 times as long). */
  heartbeatMs?: number
  events?: PacerEvents
  /** The pacer's time: its waits, rate steps and heartbeats (the system clock by default). */
  clock?: Clock
}

interface PacingRedis {
  ccgPaceReserve (bucket: string, rate: string, replicas: string, intervalMs: number, burst: number, maxWaitMs: number): Promise<ReserveReply>
  ccgPaceAccepted (accepted: string, member: string, windowMs: number): Promise<number>
  ccgPaceLearn (bucket: string, rate: string, accepted: string, holes: string, current: number, floor: number, windowMs: number,
    debounceMs: number, since: number, ttlMs: number, channel: string, minCut: number, maxCut: number): Promise<LearnReply>
  ccgPaceRelease (bucket: string, holes: string, ...markIntervalPairs: string[]): Promise<number>
}

const SCRIPTS = [
  ['ccgPaceReserve', 3, RESERVE_LUA], ['ccgPaceAccepted', 1, ACCEPTED_LUA], ['ccgPaceLearn', 4, LEARN_LUA], ['ccgPaceRelease', 2, RELEASE_LUA]
] as const

/** A start sleeping until its slot; re-planned when the rate drops. */
interface Waiter {
  sendAt: number
  /** Latest send time that still leaves the call its reserve before the deadline. */
  limit: number
  slot: Slot
  /** Reserved on the shared schedule (marks on Redis's clock) or the local one. */
  shared: boolean
  timer?: Timer
  done (error?: Error): void
}

/** The deployment's learned rate: `base` calls/s since `since`, climbing back after a hold; 1/k of the rate before. */
interface RateRecord { base: number; since: number; at: number; k: number }

export class TokenBucketPacer implements Pacer {
  private readonly id = randomUUID()
  private readonly local = new LocalSchedule()
  /** This process's calls by the time they are actually sent (see beforeAttempt). */
  private readonly sent = new LocalSchedule()
  private readonly burst: number
  private readonly keys: { bucket: string; rate: string; replicas: string; accepted: string; holes: string; channel: string }
  private readonly learning: Required<LearningOptions>
  private readonly waiters = new Set<Waiter>()
  private record: RateRecord | undefined
  private lastRate: number
  private lastLearnAt = -Infinity
  /** When this process's calls were accepted, over the last window: measured when alone. */
  private readonly acceptedAt: number[] = []
  private acceptedSeq = 0
  private waiting = 0
  private knownReplicas = 1
  private alone = false
  /** Local time at which the shared schedule, as last seen, has handed out all its slots. */
  private sharedHorizon = 0
  private stepTimer: Timer | undefined
  private heartbeat: Timer | undefined
  private readonly clock: Clock
  /** Hears at once when another replica lowers the rate, to re-plan the starts waiting here. */
  private readonly subscriber: Redis | undefined
  private readonly onReady = () => { void this.beat() }

  constructor (private readonly options: PacerOptions) {
    if (!(options.rate > 0) || !(options.burst >= 1)) throw new RangeError('pacer: rate must be > 0 and burst >= 1')
    // One token of the burst is held back: it absorbs network jitter, so that calls sent exactly
    // on schedule but arriving closer together than they left are not throttled by Connect.
    this.burst = options.burst >= 2 ? Math.floor(options.burst) - 1 : 1
    this.lastRate = options.rate
    this.clock = options.clock ?? systemClock
    const prefix = `${options.keyPrefix ?? ''}pacing:`
    this.keys = {
      bucket: `${prefix}bucket`, rate: `${prefix}rate`, replicas: `${prefix}replicas`,
      accepted: `${prefix}accepted`, holes: `${prefix}holes`, channel: `${prefix}rate`
    }
    this.learning = { windowMs: 1_000, floor: 0.125, debounceMs: 1_000, holdMs: 10_000, stepMs: 1_500, step: 0.05, ...options.learning }
    const redis = options.redis
    if (redis) {
      for (const [name, numberOfKeys, lua] of SCRIPTS) {
        if (typeof (redis as unknown as Record<string, unknown>)[name] !== 'function') redis.defineCommand(name, { numberOfKeys, lua })
      }
      redis.on('ready', this.onReady)
      if (redis.status === 'ready') void this.beat()
      const every = () => {
        this.heartbeat = this.clock.setTimeout(() => { void this.beat(); every() }, this.heartbeatMs, { unref: true })
      }
      every()
      const subscriber = this.subscriber = redis.duplicate()
      subscriber.on('error', () => {})
      subscriber.on('ready', () => { subscriber.subscribe(this.keys.channel).catch(() => {}) })
      subscriber.on('message', (_channel: string, record: string) => { this.adopt(record, 'shared') })
    }
  }

  private get heartbeatMs (): number { return this.options.heartbeatMs ?? 5_000 }

  /** Replicas seen in Redis recently (this one included); 1 without Redis. */
  get replicas (): number { return this.knownReplicas }

  /** The deployment's pace right now, in calls per second. */
  get rate (): number { return this.rateAt(this.clock.now()) }

  /** The pace right now, as a fraction of the configured rate (1 unless Connect throttled us). */
  get factor (): number { return this.rate / this.options.rate }

  async acquire (deadline: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw abortError(signal)
    const started = this.clock.now()
    if (this.waiting >= (this.options.maxQueue ?? Infinity)) {
      throw this.shed(this.waiting * this.intervalMs(1))
    }
    this.setWaiting(+1)
    try {
      const limit = deadline - (this.options.callReserveMs ?? 0)
      const { slot, shared } = await this.reserve(limit - started)
      if (!slot.granted) throw this.shed(slot.waitMs)
      await this.wait(slot, shared, limit, signal)
      this.options.events?.granted?.(this.clock.now() - started)
    } finally {
      this.setWaiting(-1)
    }
  }

  /** Connect throttled a call: lower the deployment's rate to what Connect accepts. */
  onThrottled (): void {
    const now = this.clock.now()
    if (now - this.lastLearnAt < this.learning.debounceMs) return
    this.lastLearnAt = now
    const redis = this.commands()
    if (redis && !this.alone) void this.learnShared(redis, now)
    else this.learnLocally(now)
  }

  /** Inside the SDK, after each HTTP attempt: accepted calls are what the rate is learned from. */
  afterAttempt (errorName: string | undefined): void {
    if (errorName === undefined) this.accepted()
    else if (THROTTLED.has(errorName)) this.onThrottled()
  }

  /**
   * Right before each HTTP attempt, after the SDK has built and signed it. A retry spends quota
   * like a first attempt, so it reserves a slot of its own (the first attempt did in acquire()).
   * Then every attempt passes a bucket kept on the time calls actually leave this process: a busy
   * event loop can hold paced calls back and release them together, and Connect's bucket holds no
   * more than its burst however long they were held. A start whose caller left (during the SDK's
   * backoff, say) stops here.
   */
  async beforeAttempt (attempt: number, deadline: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw abortError(signal)
    if (attempt > 1) await this.acquire(deadline, signal)
    const now = this.clock.now()
    const slot = this.sent.reserve(now, this.intervalMs(1), this.burstAt(now), deadline - now - (this.options.callReserveMs ?? 0))
    if (!slot.granted) throw this.shed(slot.waitMs)
    try {
      if (slot.waitMs > 0) await delay(this.clock, slot.waitMs, signal)
      if (signal.aborted) throw abortError(signal)
    } catch (error) {
      this.sent.release(this.clock.now(), [slot])
      throw error
    }
  }

  async close (): Promise<void> {
    this.clock.clearTimeout(this.heartbeat)
    this.clock.clearTimeout(this.stepTimer)
    this.subscriber?.disconnect()
    const redis = this.options.redis
    if (!redis) return
    redis.off('ready', this.onReady)
    await redis.zrem(this.keys.replicas, this.id).catch(() => {})
  }

  private commands (): (Redis & PacingRedis) | undefined {
    return this.options.redis as (Redis & PacingRedis) | undefined
  }

  private async reserve (maxWaitMs: number): Promise<{ slot: Slot; shared: boolean }> {
    const now = this.clock.now()
    const redis = this.commands()
    if (redis) {
      try {
        const intervalMs = this.intervalMs(1)
        const [granted, wait, horizon, replicas, record, mark, reservedAt] = await redis.ccgPaceReserve(
          this.keys.bucket, this.keys.rate, this.keys.replicas, intervalMs, this.burstAt(now), Math.min(maxWaitMs, 1e12))
        if (replicas >= 1) this.knownReplicas = replicas
        // From the answer's arrival: a horizon seen late is safe, one seen early is not.
        this.sharedHorizon = this.clock.now() + Number(horizon)
        this.setAlone(false)
        // A change another replica made while our subscription was down.
        this.adopt(record, 'shared')
        const slot = { granted: granted === 1, waitMs: Math.max(0, Number(wait)), mark: Number(mark), intervalMs }
        return { slot: this.lateReplan(slot, Number(reservedAt), maxWaitMs), shared: true }
      } catch (error) {
        this.options.events?.redisFailed?.(error)
        this.setAlone(true)
      }
    }
    const share = this.redisShare()
    const slot = this.local.reserve(now, this.intervalMs(share), Math.max(1, Math.floor(this.burstAt(now) * share)), maxWaitMs)
    return { slot, shared: false }
  }

  /**
   * A slot reserved just before the rate was lowered, whose answer arrived after this replica
   * re-planned its waiting starts: it moves like theirs did.
   */
  private lateReplan (slot: Slot, reservedAt: number, maxWaitMs: number): Slot {
    const r = this.record
    if (!slot.granted || !r || !(r.k > 1) || !(reservedAt < r.at)) return slot
    const waitMs = slot.waitMs * r.k
    const moved = { ...slot, waitMs, mark: Number(stretch(slot.mark, r.at, r.k).toFixed(3)), intervalMs: slot.intervalMs * r.k }
    if (waitMs <= maxWaitMs) return moved
    this.giveBack([{ slot: moved, shared: true }])
    return { ...moved, granted: false }
  }

  /** Sleeps until the slot; gives it back if the start leaves first. */
  private wait (slot: Slot, shared: boolean, limit: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) {
      this.abandon([{ slot, shared }])
      return Promise.reject(abortError(signal))
    }
    // Counted from the answer, not from the ask: a little late is safe, early is throttled.
    if (slot.waitMs <= 0) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        waiter.done(abortError(signal))
        this.abandon([waiter])
      }
      const waiter: Waiter = {
        sendAt: this.clock.now() + slot.waitMs,
        limit,
        slot,
        shared,
        done: (error) => {
          this.waiters.delete(waiter)
          this.clock.clearTimeout(waiter.timer)
          signal.removeEventListener('abort', onAbort)
          if (error) reject(error)
          else resolve()
        }
      }
      signal.addEventListener('abort', onAbort, { once: true })
      this.waiters.add(waiter)
      this.wake(waiter)
    })
  }

  private wake (waiter: Waiter): void {
    this.clock.clearTimeout(waiter.timer)
    waiter.timer = this.clock.setTimeout(() => waiter.done(), Math.max(0, waiter.sendAt - this.clock.now()))
  }

  private abandon (left: Array<{ slot: Slot; shared: boolean }>): void {
    for (let i = 0; i < left.length; i++) this.options.events?.abandoned?.()
    this.giveBack(left)
  }

  /** Slots nobody will use go back to the schedule they came from; those at its end come free. */
  private giveBack (slots: Array<{ slot: Slot; shared: boolean }>): void {
    const usable = slots.filter((s) => Number.isFinite(s.slot.mark))
    const local = usable.filter((s) => !s.shared).map((s) => s.slot)
    if (local.length > 0) this.returned(this.local.release(this.clock.now(), local))
    const shared = usable.filter((s) => s.shared).flatMap((s) => [s.slot.mark.toFixed(3), String(s.slot.intervalMs)])
    const redis = this.commands()
    if (shared.length === 0 || !redis || this.alone) return
    redis.ccgPaceRelease(this.keys.bucket, this.keys.holes, ...shared).then((freed) => this.returned(freed), () => {})
  }

  private returned (slots: number): void {
    if (slots > 0) this.options.events?.returned?.(slots)
  }

  private accepted (): void {
    const now = this.clock.now()
    this.acceptedAt.push(now)
    this.trimAccepted(now)
    const redis = this.commands()
    if (!redis || this.alone) return
    redis.ccgPaceAccepted(this.keys.accepted, `${this.id}:${++this.acceptedSeq}`, this.learning.windowMs).catch(() => {})
  }

  private trimAccepted (now: number): void {
    const from = now - this.learning.windowMs
    const stale = this.acceptedAt.findIndex((at) => at > from)
    this.acceptedAt.splice(0, stale === -1 ? this.acceptedAt.length : stale)
  }

  private async learnShared (redis: Redis & PacingRedis, now: number): Promise<void> {
    const l = this.learning
    const fullRecoveryMs = l.holdMs + Math.ceil((1 - l.floor) / l.step) * l.stepMs
    try {
      const [changed, record, measured] = await redis.ccgPaceLearn(
        this.keys.bucket, this.keys.rate, this.keys.accepted, this.keys.holes, this.rateAt(now), this.options.rate * l.floor,
        l.windowMs, l.debounceMs, now, fullRecoveryMs + l.stepMs, this.keys.channel, MIN_CUT, MAX_CUT)
      this.adopt(record, changed === 1 ? 'throttled' : 'shared', changed === 1 ? Number(measured) : undefined)
    } catch {
      this.learnLocally(this.clock.now())
    }
  }

  /** Without Redis: from this process's own accepted calls, for its own share of the rate. */
  private learnLocally (now: number): void {
    const share = this.redisShare()
    this.trimAccepted(now)
    const measured = this.acceptedAt.length * 1000 / this.learning.windowMs
    const current = this.rateAt(now)
    const own = lowerRate(current * share, measured, this.options.rate * this.learning.floor * share)
    if (own >= current * share) return
    const k = current * share / own
    this.local.stretch(now, k)
    this.record = { base: own / share, since: now, at: now, k }
    this.changed('throttled', { measured, ...this.replan(k, now, false) })
  }

  /** A lowered rate from Redis ("rate:since:at:k"), newer than the one this replica holds. */
  private adopt (raw: string | null | undefined, reason: 'throttled' | 'shared', measured?: number): void {
    const [base, since, at, k] = (raw ?? '').split(':').map(Number)
    if (base === undefined || since === undefined || at === undefined || k === undefined) return
    if (!(base > 0) || !Number.isFinite(since) || !Number.isFinite(at) || !(k >= 1)) return
    if (this.record && at <= this.record.at) return
    this.record = { base, since, at, k }
    this.changed(reason, { ...(measured === undefined ? {} : { measured }), ...this.replan(k, at, true) })
  }

  /**
   * The rate fell to 1/k of what the waiting starts were planned at: every slot still ahead moves
   * k times as far from now, as on the schedule itself. A start whose new slot comes after its
   * deadline is refused now and its slot given back.
   */
  private replan (k: number, pivot: number, shared: boolean): { replanned: number; shed: number } {
    const now = this.clock.now()
    const dropped: Waiter[] = []
    let replanned = 0
    for (const w of [...this.waiters]) {
      w.sendAt = stretch(w.sendAt, now, k)
      // A mark from the other schedule no longer matches anything there.
      w.slot = w.shared === shared
        ? { ...w.slot, mark: Number(stretch(w.slot.mark, pivot, k).toFixed(3)), intervalMs: w.slot.intervalMs * k }
        : { ...w.slot, mark: NaN }
      if (w.sendAt > w.limit) {
        w.done(this.shed(w.sendAt - now))
        dropped.push(w)
      } else {
        this.wake(w)
        replanned++
      }
    }
    this.giveBack(dropped)
    return { replanned, shed: dropped.length }
  }

  private changed (reason: RateChange['reason'], details: Omit<RateChange, 'reason' | 'configured'>): void {
    const rate = this.rateAt(this.clock.now())
    this.lastRate = rate
    this.options.events?.rateChanged?.(rate, { reason, configured: this.options.rate, ...details })
    this.planRecovery()
  }

  /** One event per step back up, until the configured rate. */
  private planRecovery (): void {
    this.clock.clearTimeout(this.stepTimer)
    const r = this.record
    const now = this.clock.now()
    if (!r || this.rateAt(now) >= this.options.rate) return
    const { holdMs, stepMs } = this.learning
    const next = r.since + holdMs + Math.max(0, Math.floor((now - r.since - holdMs) / stepMs) + 1) * stepMs
    this.stepTimer = this.clock.setTimeout(() => {
      const rate = this.rateAt(this.clock.now())
      if (rate > this.lastRate) this.changed('recovering', { replanned: 0, shed: 0 })
      else this.planRecovery()
    }, Math.max(1, next - now + 1), { unref: true })
  }

  /** Additive increase: after a quiet hold, `step` of the configured rate per `stepMs`. */
  private rateAt (now: number): number {
    const r = this.record
    if (!r) return this.options.rate
    const { holdMs, stepMs, step } = this.learning
    const steps = now < r.since + holdMs ? 0 : Math.floor((now - r.since - holdMs) / stepMs) + 1
    return Math.min(this.options.rate, r.base + steps * step * this.options.rate)
  }

  /** The burst shrinks with the rate: a quota lower than configured has a smaller bucket too. */
  private burstAt (now: number): number {
    return Math.max(1, Math.floor(this.burst * this.rateAt(now) / this.options.rate))
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
      const burst = Math.max(1, Math.floor(this.burstAt(this.clock.now()) * share))
      this.local.tat = Math.max(this.local.tat, this.sharedHorizon + burst * this.intervalMs(share))
    }
    this.options.events?.fallback?.(alone, { replicas: this.knownReplicas, rate: alone ? this.rate * share : this.rate })
  }

  private intervalMs (share: number): number {
    return 1000 / (this.rateAt(this.clock.now()) * share)
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
    const now = this.clock.now()
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

export function createPacer (options: PacerOptions): TokenBucketPacer {
  return new TokenBucketPacer(options)
}
