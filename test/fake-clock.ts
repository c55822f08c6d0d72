import { createClock } from '@sinonjs/fake-timers'
import type { Clock } from '../src/clock.js'

/**
 * A Clock that moves only when the test says so (@sinonjs/fake-timers underneath): waits are
 * checked exactly, and nothing sleeps on the wall clock. It starts at the wall clock's now, so
 * times taken from it and from Date.now() (by code it is not given to) stay close.
 */
export function fakeClock (start = Date.now()) {
  const fake = createClock(start)
  const clock: Clock = {
    now: () => fake.now,
    setTimeout: (callback, ms) => fake.setTimeout(callback, ms),
    clearTimeout: (timer) => { fake.clearTimeout(timer as Parameters<typeof fake.clearTimeout>[0]) }
  }
  return {
    clock,
    /** Moves time on by `ms`, running each timer due and the promises it settles on the way. */
    tick: (ms: number) => fake.tickAsync(ms),
    /** Runs every pending timer (and those they start) in time order. */
    runAll: () => fake.runAllAsync(),
    /** Lets pending promise callbacks run without moving time. */
    settle: () => fake.tickAsync(0),
    /** Moves time on by `ms` at once, running each timer due (for code that settles no promises). */
    tickSync: (ms: number) => { fake.tick(ms) },
    /** Timers pending. */
    timers: () => fake.countTimers()
  }
}
