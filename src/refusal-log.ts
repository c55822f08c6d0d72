import { systemClock, type Clock, type Timer } from './clock.js'

/** One client's refusals of one kind over a window, as its summary line reports them. */
export interface RefusalSummary {
  /** The client key (an address, or an IPv6 /64); OTHER_CLIENTS for those past `maxTracked`. */
  client: string
  code: string
  statusCode: number
  /** Refusals of this kind from this client in the window. */
  count: number
  /** How many of them had a line of their own. */
  logged: number
  windowSeconds: number
}

export const OTHER_CLIENTS = '(other clients)'

export interface RefusalLogOptions {
  /** Lines of their own per client and kind per window. */
  perClient: number
  /** Lines of their own per window, all clients and kinds together. */
  total: number
  windowMs: number
  /** Client and kind pairs counted apart per window; the rest are counted together, per kind. */
  maxTracked: number
  clock?: Clock
  summarize: (summary: RefusalSummary) => void
}

interface Tally { client: string; code: string; statusCode: number; count: number; logged: number }

/**
 * Decides which refusals get a log line of their own, so a flood costs a bounded number of lines: per
 * window, the first few of each kind from each client, and a fixed number overall; everything past
 * that is counted and told in one summary line per client and kind when the window ends. Memory is
 * bounded by `maxTracked`: an attacker with many addresses only makes the "other clients" tally grow.
 * Fixed windows for everyone (one timer), rather than one window per client: no per-client timers,
 * and the counts are forgotten all at once.
 */
export class RefusalLog {
  private readonly tallies = new Map<string, Tally>()
  private readonly overflow = new Map<string, Tally>()
  private lines = 0
  private windowStart: number
  private readonly clock: Clock
  private timer: Timer | undefined

  constructor (private readonly options: RefusalLogOptions) {
    this.clock = options.clock ?? systemClock
    this.windowStart = this.clock.now()
    this.schedule()
  }

  /** One timer for everyone, set again at each window's end; it never keeps the process alive. */
  private schedule (): void {
    this.timer = this.clock.setTimeout(() => {
      this.flush()
      this.schedule()
    }, this.options.windowMs, { unref: true })
  }

  /** Counts one refusal; true when it should be logged on its own line. */
  admit (client: string, code: string, statusCode: number): boolean {
    const key = `${code} ${client}`
    let tally = this.tallies.get(key)
    if (tally === undefined) {
      if (this.tallies.size < this.options.maxTracked) {
        tally = { client, code, statusCode, count: 0, logged: 0 }
        this.tallies.set(key, tally)
      } else {
        tally = this.overflow.get(code)
        if (tally === undefined) {
          tally = { client: OTHER_CLIENTS, code, statusCode, count: 0, logged: 0 }
          this.overflow.set(code, tally)
        }
      }
    }
    tally.count++
    if (tally.logged >= this.options.perClient || this.lines >= this.options.total) return false
    tally.logged++
    this.lines++
    return true
  }

  /** Ends the window: one summary for each client and kind that had refusals without a line. */
  flush (): void {
    const now = this.clock.now()
    const windowSeconds = Math.round((now - this.windowStart) / 100) / 10
    for (const tallies of [this.tallies, this.overflow]) {
      for (const { client, code, statusCode, count, logged } of tallies.values()) {
        if (count > logged) this.options.summarize({ client, code, statusCode, count, logged, windowSeconds })
      }
      tallies.clear()
    }
    this.lines = 0
    this.windowStart = now
  }

  /** Stops the timer and tells what the last window held back. */
  close (): void {
    this.clock.clearTimeout(this.timer)
    this.timer = undefined
    this.flush()
  }
}
