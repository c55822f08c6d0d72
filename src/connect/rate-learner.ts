/**
 * The rate the pacer keeps: the configured one until Connect throttles, then what Connect
 * accepted over the last moment (lowerRate), held for a while and climbed back step by step.
 * It knows the calls this process saw accepted, the learned record (its own or another replica's)
 * and when the next step up is due; the schedules and the waiting starts are the pacer's.
 */
import type { Clock, Timer } from '../clock.js'
import { lowerRate } from './pacing-schedule.js'

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

/** The deployment's learned rate: `base` calls/s since `since`, climbing back after a hold; 1/k of the rate before. */
export interface RateRecord { base: number; since: number; at: number; k: number }

/** The replica that learned a record ("rate:since:at:k:learner"), if it says. */
export const learnedBy = (raw: string): string | undefined => raw.split(':')[4]

export class RateLearner {
  readonly learning: Required<LearningOptions>
  private recordValue: RateRecord | undefined
  private lastRate: number
  private lastLearnAt = -Infinity
  /** When this process's calls were accepted, over the last window: measured when alone. */
  private readonly acceptedAt: number[] = []
  private stepTimer: Timer | undefined

  /** `onStep` is told each step back up, once the rate has risen since the last change. */
  constructor (readonly configured: number, learning: LearningOptions | undefined, private readonly clock: Clock, private readonly onStep: () => void) {
    this.lastRate = configured
    this.learning = { windowMs: 1_000, floor: 0.125, debounceMs: 1_000, holdMs: 10_000, stepMs: 1_500, step: 0.05, ...learning }
  }

  get record (): RateRecord | undefined { return this.recordValue }

  /** Additive increase: after a quiet hold, `step` of the configured rate per `stepMs`. */
  rateAt (now: number): number {
    const r = this.recordValue
    if (!r) return this.configured
    const { holdMs, stepMs, step } = this.learning
    const steps = now < r.since + holdMs ? 0 : Math.floor((now - r.since - holdMs) / stepMs) + 1
    return Math.min(this.configured, r.base + steps * step * this.configured)
  }

  /** A throttle to learn from, unless one was learned from within the debounce (then false). */
  takeThrottle (now: number): boolean {
    if (now - this.lastLearnAt < this.learning.debounceMs) return false
    this.lastLearnAt = now
    return true
  }

  /** Connect accepted one of this process's calls. */
  accepted (now: number): void {
    this.acceptedAt.push(now)
    this.trimAccepted(now)
  }

  private trimAccepted (now: number): void {
    const from = now - this.learning.windowMs
    const stale = this.acceptedAt.findIndex((at) => at > from)
    this.acceptedAt.splice(0, stale === -1 ? this.acceptedAt.length : stale)
  }

  /**
   * Without Redis: from this process's own accepted calls, for its `share` of the rate. Returns
   * the measured rate and how many times slower the pace now is, or undefined if it did not drop.
   */
  lowerLocally (now: number, share: number): { measured: number; k: number } | undefined {
    this.trimAccepted(now)
    const measured = this.acceptedAt.length * 1000 / this.learning.windowMs
    const current = this.rateAt(now)
    const own = lowerRate(current * share, measured, this.configured * this.learning.floor * share)
    if (own >= current * share) return undefined
    const k = current * share / own
    this.recordValue = { base: own / share, since: now, at: now, k }
    return { measured, k }
  }

  /** What the shared schedule needs to lower the deployment's rate the same way. */
  sharedArgs (now: number): { current: number; floor: number; windowMs: number; debounceMs: number; since: number; ttlMs: number } {
    const l = this.learning
    const fullRecoveryMs = l.holdMs + Math.ceil((1 - l.floor) / l.step) * l.stepMs
    return { current: this.rateAt(now), floor: this.configured * l.floor, windowMs: l.windowMs, debounceMs: l.debounceMs, since: now, ttlMs: fullRecoveryMs + l.stepMs }
  }

  /** A lowered rate from Redis ("rate:since:at:k:learner"), if newer than the one held: now in force. */
  adopt (raw: string | null | undefined): RateRecord | undefined {
    const [base, since, at, k] = (raw ?? '').split(':').map(Number)
    if (base === undefined || since === undefined || at === undefined || k === undefined) return undefined
    if (!(base > 0) || !Number.isFinite(since) || !Number.isFinite(at) || !(k >= 1)) return undefined
    if (this.recordValue && at <= this.recordValue.at) return undefined
    this.recordValue = { base, since, at, k }
    return this.recordValue
  }

  /** The rate changed and was reported: returns it, and plans the next step back up. */
  changed (): number {
    const rate = this.rateAt(this.clock.now())
    this.lastRate = rate
    this.planRecovery()
    return rate
  }

  /** One event per step back up, until the configured rate. */
  private planRecovery (): void {
    this.clock.clearTimeout(this.stepTimer)
    const r = this.recordValue
    const now = this.clock.now()
    if (!r || this.rateAt(now) >= this.configured) return
    const { holdMs, stepMs } = this.learning
    const next = r.since + holdMs + Math.max(0, Math.floor((now - r.since - holdMs) / stepMs) + 1) * stepMs
    this.stepTimer = this.clock.setTimeout(() => {
      const rate = this.rateAt(this.clock.now())
      if (rate > this.lastRate) this.onStep()
      else this.planRecovery()
    }, Math.max(1, next - now + 1), { unref: true })
  }

  close (): void {
    this.clock.clearTimeout(this.stepTimer)
  }
}
