import type { Clock, Timer } from './clock.js'

/**
 * The simulator's waits (latency, slow faults, the scripted agent's pauses): none keeps the process
 * alive, and cancel() at close stops every pending one, so nothing answers on a destroyed socket.
 * A cancelled wait, or one asked for after cancel(), never settles.
 */
export class Delays {
  private readonly timers = new Set<Timer>()
  private cancelled = false

  constructor (private readonly clock: Clock) {}

  sleep (ms: number): Promise<void> {
    if (this.cancelled) return new Promise(() => {})
    if (ms <= 0) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(() => {
        this.timers.delete(timer)
        resolve()
      }, ms, { unref: true })
      this.timers.add(timer)
    })
  }

  cancel (): void {
    this.cancelled = true
    for (const timer of this.timers) this.clock.clearTimeout(timer)
    this.timers.clear()
  }
}
