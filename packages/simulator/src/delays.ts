/**
 * The simulator's waits (latency, slow faults, the scripted agent's pauses): none keeps the process
 * alive, and cancel() at close stops every pending one, so nothing answers on a destroyed socket.
 * A cancelled wait, or one asked for after cancel(), never settles.
 */
export class Delays {
  private readonly timers = new Set<NodeJS.Timeout>()
  private cancelled = false

  sleep (ms: number): Promise<void> {
    if (this.cancelled) return new Promise(() => {})
    if (ms <= 0) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer)
        resolve()
      }, ms)
      timer.unref()
      this.timers.add(timer)
    })
  }

  cancel (): void {
    this.cancelled = true
    for (const timer of this.timers) clearTimeout(timer)
    this.timers.clear()
  }
}
