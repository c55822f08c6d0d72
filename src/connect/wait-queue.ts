/**
 * The starts of this process sleeping until their slot. When the rate drops they are re-planned
 * together: each moves as far as its slot did on the schedule, and one whose new time falls past
 * its deadline is refused at once rather than after a futile wait.
 */
import { abortError, type Clock, type Timer } from '../clock.js'
import { stretch, type Slot } from './pacing-schedule.js'

/** A slot and the schedule it came from: the shared one (marks on Redis's clock) or the local one. */
export interface Placed { slot: Slot; shared: boolean }

/** A start sleeping until its slot; re-planned when the rate drops. */
interface Waiter extends Placed {
  sendAt: number
  /** Latest send time that still leaves the call its reserve before the deadline. */
  limit: number
  timer?: Timer
  done (error?: Error): void
}

export class WaitQueue {
  private readonly waiters = new Set<Waiter>()

  /** `abandon` is given the slot of each start that leaves, to give back. */
  constructor (private readonly clock: Clock, private readonly abandon: (left: Placed[]) => void) {}

  /** Sleeps until the slot; gives it back if the start leaves first. */
  wait (slot: Slot, shared: boolean, limit: number, signal: AbortSignal): Promise<void> {
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

  /**
   * The rate fell to 1/k of what the waiting starts were planned at: every slot still ahead moves
   * k times as far from now, as on the schedule itself (its marks around `pivot`). A start whose
   * new slot comes after its deadline is ended with `refuse`'s error; its slot is returned.
   */
  replan (k: number, pivot: number, shared: boolean, refuse: (waitMs: number) => Error): { replanned: number; dropped: Placed[] } {
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
        w.done(refuse(w.sendAt - now))
        dropped.push(w)
      } else {
        this.wake(w)
        replanned++
      }
    }
    return { replanned, dropped }
  }
}
