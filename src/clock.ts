/**
 * The time: what keeps time takes a Clock instead of calling Date.now() and setTimeout itself, so
 * tests move time (with @sinonjs/fake-timers) instead of waiting for it.
 */

/** A pending callback, handed back to clearTimeout. */
export type Timer = object | number

export interface Clock {
  /** Milliseconds since the epoch, as Date.now(). */
  now (): number
  /** Calls back after `ms`; with `unref`, the timer alone does not keep the process alive. */
  setTimeout (callback: () => void, ms: number, options?: { unref?: boolean }): Timer
  clearTimeout (timer: Timer | undefined): void
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout (callback, ms, options) {
    const timer = setTimeout(callback, ms)
    if (options?.unref) timer.unref()
    return timer
  },
  clearTimeout: (timer) => { clearTimeout(timer as NodeJS.Timeout | undefined) }
}

/** The error node:timers/promises rejects with when its signal aborts. */
export function abortError (signal: AbortSignal): Error {
  return Object.assign(new Error('The operation was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' })
}

/** Resolves after `ms` on `clock`, or rejects with an AbortError as soon as `signal` aborts. */
export function delay (clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortError(signal))
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clock.clearTimeout(timer)
      reject(abortError(signal!))
    }
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
