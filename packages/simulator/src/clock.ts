/**
 * The simulator's time. Everything in it that keeps time (chat durations, forgetting ended chats,
 * the request-rate bucket, token expiry, latency and faults, the agent's pauses) asks a Clock, so a
 * test moves time instead of waiting for it. The shape is the gateway's own Clock, so one fake clock
 * can drive both; the package imports nothing from the gateway.
 */
export type Timer = object | number

export interface Clock {
  /** Milliseconds since the epoch. */
  now (): number
  /** Calls back after `ms`; with `unref`, the timer alone does not keep the process alive. */
  setTimeout (callback: () => void, ms: number, options?: { unref?: boolean }): Timer
  clearTimeout (timer: Timer | undefined): void
}

/** The wall clock and Node's timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms, options) => {
    const timer = setTimeout(callback, ms)
    return options?.unref ? timer.unref() : timer
  },
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout | undefined)
}
