/**
 * Paces StartChatContact into Connect's per-account API quota (a token bucket: `rate` calls per
 * second, `burst` at once), across every replica when Redis or the state table (DynamoDB) holds the
 * schedule.
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
 * the last moment (see rate-learner.ts), every replica re-plans the starts already waiting at
 * once (those whose new slot falls past their deadline are told 503 now, not after a futile
 * wait), and the rate climbs back step by step once the throttles stop.
 *
 * The pacer only decides; the parts keep one concern each: the schedule (pacing-schedule.ts in
 * memory, shared-schedule.ts in Redis, table-schedule.ts in DynamoDB), the rate learner, the replica
 * roster and the wait queue. In DynamoDB only the schedule is shared: each replica learns the rate
 * from its own throttles (there is no channel to tell the others), and counts itself alone.
 */
import type { Redis } from 'ioredis'
import type { StateTable } from '../dynamodb.js'
import { abortError, delay, systemClock, type Clock } from '../clock.js'
import { Overloaded } from '../errors.js'
import type { Pacer } from './chat-starter.js'
import { THROTTLED } from './errors.js'
import { LocalSchedule, stretch, type Slot } from './pacing-schedule.js'
import { learnedBy, RateLearner, type LearningOptions } from './rate-learner.js'
import { ReplicaRoster } from './replica-roster.js'
import { SharedSchedule, type DeploymentSchedule } from './shared-schedule.js'
import { TableSchedule } from './table-schedule.js'
import { WaitQueue, type Placed } from './wait-queue.js'

export type { LearningOptions } from './rate-learner.js'

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
  /** One decision taken without the shared schedule (Redis or DynamoDB unreachable or too slow). */
  redisFailed? (error: unknown): void
  /** This process entered (true) or left (false) pacing alone at its share of the rate. */
  fallback? (active: boolean, details: { replicas: number; rate: number }): void
}

export interface PacerOptions {
  /** StartChatContact calls per second for the whole deployment, until Connect says otherwise. */
  rate: number
  /** Calls allowed at once on top of the rate (Connect's burst). */
  burst: number
  /**
   * Where the schedule all replicas share is kept: Redis (the learned rate and the replica count are
   * shared too) or the state table (DynamoDB). Without it each process paces alone at the full rate.
   */
  shared?: { redis: Redis; keyPrefix?: string } | { table: StateTable }
  /** The same as `shared: { redis, keyPrefix }`. */
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

export class TokenBucketPacer implements Pacer {
  private readonly local = new LocalSchedule()
  /** This process's calls by the time they are actually sent (see beforeAttempt). */
  private readonly sent = new LocalSchedule()
  private readonly burst: number
  private readonly clock: Clock
  private readonly learner: RateLearner
  private readonly queue: WaitQueue
  /** The deployment's schedule, in Redis or DynamoDB. */
  private readonly shared: DeploymentSchedule | undefined
  /** With Redis: the schedule again (it learns the rate for all replicas too) and the roster. */
  private readonly redis: { schedule: SharedSchedule; roster: ReplicaRoster } | undefined
  private acceptedSeq = 0
  private waiting = 0
  private alone = false
  /** Local time at which the shared schedule, as last seen, has handed out all its slots. */
  private sharedHorizon = 0
  /** Hears at once when another replica lowers the rate, to re-plan the starts waiting here. */
  private readonly subscriber: Redis | undefined

  constructor (private readonly options: PacerOptions) {
    if (!(options.rate > 0) || !(options.burst >= 1)) throw new RangeError('pacer: rate must be > 0 and burst >= 1')
    // One token of the burst is held back: it absorbs network jitter, so that calls sent exactly
    // on schedule but arriving closer together than they left are not throttled by Connect.
    this.burst = options.burst >= 2 ? Math.floor(options.burst) - 1 : 1
    const clock = this.clock = options.clock ?? systemClock
    this.learner = new RateLearner(options.rate, options.learning, clock, () => this.changed('recovering', { replanned: 0, shed: 0 }))
    this.queue = new WaitQueue(clock, (left) => this.abandon(left))
    const where = options.shared ?? (options.redis ? { redis: options.redis, keyPrefix: options.keyPrefix } : undefined)
    if (where && 'table' in where) this.shared = new TableSchedule(where.table, clock)
    if (where && 'redis' in where) {
      const { redis } = where
      const shared = this.shared = new SharedSchedule(redis, where.keyPrefix)
      const roster = new ReplicaRoster(redis, shared.keys.replicas, options.heartbeatMs ?? 5_000, clock)
      this.redis = { schedule: shared, roster }
      const subscriber = this.subscriber = redis.duplicate()
      subscriber.on('error', () => {})
      subscriber.on('ready', () => { subscriber.subscribe(shared.keys.channel).catch(() => {}) })
      // This replica's own record is reported when its learn script answers (as 'throttled', with
      // what it measured); heard first on the channel, it would pass as another replica's.
      subscriber.on('message', (_channel: string, record: string) => {
        if (learnedBy(record) !== roster.id) this.adopt(record, 'shared')
      })
    }
  }

  /** Replicas seen in Redis recently (this one included); 1 without Redis. */
  get replicas (): number { return this.redis?.roster.count ?? 1 }

  /** The deployment's pace right now, in calls per second. */
  get rate (): number { return this.learner.rateAt(this.clock.now()) }

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
      await this.queue.wait(slot, shared, limit, signal)
      this.options.events?.granted?.(this.clock.now() - started)
    } finally {
      this.setWaiting(-1)
    }
  }

  /** Connect throttled a call: lower the deployment's rate to what Connect accepts. */
  onThrottled (): void {
    const now = this.clock.now()
    if (!this.learner.takeThrottle(now)) return
    if (this.redis && !this.alone) void this.learnShared(this.redis, now)
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
    this.learner.close()
    this.subscriber?.disconnect()
    await this.redis?.roster.close()
  }

  private async reserve (maxWaitMs: number): Promise<Placed> {
    const now = this.clock.now()
    if (this.shared) {
      try {
        const r = await this.shared.reserve(this.intervalMs(1), this.burstAt(now), maxWaitMs)
        this.redis?.roster.saw(r.replicas)
        // From the answer's arrival: a horizon seen late is safe, one seen early is not.
        this.sharedHorizon = this.clock.now() + r.horizonMs
        this.setAlone(false)
        // A change another replica made while our subscription was down.
        this.adopt(r.record, 'shared')
        return { slot: this.lateReplan(r.slot, r.reservedAt, maxWaitMs), shared: true }
      } catch (error) {
        this.options.events?.redisFailed?.(error)
        this.setAlone(true)
      }
    }
    const share = this.share()
    const slot = this.local.reserve(now, this.intervalMs(share), Math.max(1, Math.floor(this.burstAt(now) * share)), maxWaitMs)
    return { slot, shared: false }
  }

  /**
   * A slot reserved just before the rate was lowered, whose answer arrived after this replica
   * re-planned its waiting starts: it moves like theirs did.
   */
  private lateReplan (slot: Slot, reservedAt: number, maxWaitMs: number): Slot {
    const r = this.learner.record
    if (!slot.granted || !r || !(r.k > 1) || !(reservedAt < r.at)) return slot
    const waitMs = slot.waitMs * r.k
    const moved = { ...slot, waitMs, mark: Number(stretch(slot.mark, r.at, r.k).toFixed(3)), intervalMs: slot.intervalMs * r.k }
    if (waitMs <= maxWaitMs) return moved
    this.giveBack([{ slot: moved, shared: true }])
    return { ...moved, granted: false }
  }

  private abandon (left: Placed[]): void {
    for (let i = 0; i < left.length; i++) this.options.events?.abandoned?.()
    this.giveBack(left)
  }

  /** Slots nobody will use go back to the schedule they came from; those at its end come free. */
  private giveBack (slots: Placed[]): void {
    const usable = slots.filter((s) => Number.isFinite(s.slot.mark))
    const local = usable.filter((s) => !s.shared).map((s) => s.slot)
    if (local.length > 0) this.returned(this.local.release(this.clock.now(), local))
    const shared = usable.filter((s) => s.shared).map((s) => s.slot)
    if (shared.length === 0 || !this.shared || this.alone) return
    this.shared.release(shared).then((freed) => this.returned(freed), () => {})
  }

  private returned (slots: number): void {
    if (slots > 0) this.options.events?.returned?.(slots)
  }

  private accepted (): void {
    this.learner.accepted(this.clock.now())
    if (!this.redis || this.alone) return
    this.redis.schedule.accepted(`${this.redis.roster.id}:${++this.acceptedSeq}`, this.learner.learning.windowMs).catch(() => {})
  }

  private async learnShared ({ schedule, roster }: { schedule: SharedSchedule; roster: ReplicaRoster }, now: number): Promise<void> {
    try {
      const { changed, record, measured } = await schedule.learn(this.learner.sharedArgs(now), roster.id)
      this.adopt(record, changed ? 'throttled' : 'shared', changed ? measured : undefined)
    } catch {
      this.learnLocally(this.clock.now())
    }
  }

  /** Without Redis: from this process's own accepted calls, for its own share of the rate (the whole in DynamoDB). */
  private learnLocally (now: number): void {
    const lowered = this.learner.lowerLocally(now, this.share())
    if (!lowered) return
    this.local.stretch(now, lowered.k)
    this.changed('throttled', { measured: lowered.measured, ...this.replan(lowered.k, now, false) })
  }

  /** A lowered rate from Redis ("rate:since:at:k:learner"), newer than the one this replica holds. */
  private adopt (raw: string | null | undefined, reason: 'throttled' | 'shared', measured?: number): void {
    const record = this.learner.adopt(raw)
    if (!record) return
    this.changed(reason, { ...(measured === undefined ? {} : { measured }), ...this.replan(record.k, record.at, true) })
  }

  /** Re-plans the waiting starts at 1/k of the rate; those now past their deadline are refused and their slots given back. */
  private replan (k: number, pivot: number, shared: boolean): { replanned: number; shed: number } {
    const { replanned, dropped } = this.queue.replan(k, pivot, shared, (waitMs) => this.shed(waitMs))
    this.giveBack(dropped)
    return { replanned, shed: dropped.length }
  }

  private changed (reason: RateChange['reason'], details: Omit<RateChange, 'reason' | 'configured'>): void {
    const rate = this.learner.changed()
    this.options.events?.rateChanged?.(rate, { reason, configured: this.options.rate, ...details })
  }

  /** The burst shrinks with the rate: a quota lower than configured has a smaller bucket too. */
  private burstAt (now: number): number {
    return Math.max(1, Math.floor(this.burst * this.learner.rateAt(now) / this.options.rate))
  }

  /** Without a shared schedule a process has the whole rate; after losing it, its share (the whole in DynamoDB, which keeps no roster). */
  private share (): number {
    return this.shared ? 1 / this.replicas : 1
  }

  private setAlone (alone: boolean): void {
    if (alone === this.alone) return
    this.alone = alone
    const share = this.share()
    if (alone) {
      // Slots the shared schedule already handed out (to every replica) are still to be used:
      // this replica starts on its own only after them, with an empty bucket.
      const burst = Math.max(1, Math.floor(this.burstAt(this.clock.now()) * share))
      this.local.tat = Math.max(this.local.tat, this.sharedHorizon + burst * this.intervalMs(share))
    }
    this.options.events?.fallback?.(alone, { replicas: this.replicas, rate: alone ? this.rate * share : this.rate })
  }

  private intervalMs (share: number): number {
    return 1000 / (this.learner.rateAt(this.clock.now()) * share)
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
}

export function createPacer (options: PacerOptions): TokenBucketPacer {
  return new TokenBucketPacer(options)
}
