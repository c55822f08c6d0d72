import { createClock } from '@sinonjs/fake-timers'
import type { Clock } from '../src/clock.js'

/**
 * A Clock for the simulator that moves only when the test moves it (from the wall clock's now, so
 * times the SDK stamps stay close), and what is pending on it.
 */
export function fakeClock () {
  const fake = createClock(Date.now())
  const clock: Clock = {
    now: () => fake.now,
    setTimeout: (callback, ms) => fake.setTimeout(callback, ms),
    clearTimeout: (timer) => { fake.clearTimeout(timer as Parameters<typeof fake.clearTimeout>[0]) }
  }
  /** Moves time on by `ms`, running each timer due and the promises it settles on the way. */
  const tick = async (ms: number) => { await fake.tickAsync(ms) }
  return { clock, tick, timers: () => fake.countTimers() }
}
