/**
 * The pacing schedule (GCRA: one "theoretical arrival time", TAT), in memory for a process on its
 * own (the deployment's, in Redis, is shared-schedule.ts), plus the rule that lowers the rate when
 * Connect throttles.
 *
 * Every reservation is known by its mark: the TAT right after it. Marks let a replica re-plan its
 * waiting starts when the rate changes (the TAT and every mark are stretched around the same
 * instant) and give back the slot of a start that left: a released mark becomes a hole, and holes
 * at the end of the schedule are folded back into the TAT, whichever replica released them first.
 * A hole in the middle stays: moving every later start up would take all replicas' waiters.
 */

/** A reservation: whether it fits, how long to wait, and its place on the schedule. */
export interface Slot { granted: boolean; waitMs: number; mark: number; intervalMs: number }

/** A throttle lowers the rate by at least this much... */
export const MIN_CUT = 0.9
/** ...and at most to this much, however few calls Connect accepted (few sent is not few allowed). */
export const MAX_CUT = 0.5

/**
 * What Connect really gives: the calls it accepted per second over the last window, with each
 * step a cut of 10% to 50% (a measurement right after a quiet spell says little).
 */
export function lowerRate (current: number, acceptedPerSecond: number, floor: number): number {
  return Math.max(floor, Math.min(current * MIN_CUT, Math.max(current * MAX_CUT, acceptedPerSecond)))
}

/** Stretches a time on the schedule around `pivot` by `k` (the old rate over the new). */
export const stretch = (at: number, pivot: number, k: number): number => at > pivot ? pivot + (at - pivot) * k : at
const round3 = (x: number): number => Number(x.toFixed(3))

/** The same schedule in memory, for a process without Redis or while Redis is unreachable. */
export class LocalSchedule {
  tat = 0
  private readonly holes = new Map<number, number>()

  reserve (now: number, intervalMs: number, burst: number, maxWaitMs: number): Slot {
    const tat = Math.max(this.tat, now)
    const waitMs = tat + intervalMs - burst * intervalMs - now
    if (waitMs > maxWaitMs) return { granted: false, waitMs, mark: NaN, intervalMs }
    this.tat = round3(tat + intervalMs)
    return { granted: true, waitMs: Math.max(0, waitMs), mark: this.tat, intervalMs }
  }

  stretch (pivot: number, k: number): void {
    this.tat = round3(stretch(this.tat, pivot, k))
    this.holes.clear()
  }

  /** Gives slots back; those at the end of the schedule come free at once. */
  release (now: number, slots: Array<{ mark: number; intervalMs: number }>): number {
    for (const s of slots) if (s.mark > now) this.holes.set(s.mark, s.intervalMs)
    let freed = 0
    for (let interval = this.holes.get(this.tat); interval !== undefined; interval = this.holes.get(this.tat)) {
      this.holes.delete(this.tat)
      this.tat = round3(this.tat - interval)
      freed++
    }
    for (const mark of this.holes.keys()) if (mark > this.tat || mark <= now) this.holes.delete(mark)
    return freed
  }
}
