import { StateUnavailable } from './errors.js'

/**
 * The fail-closed rule for shared state whose safety depends on every replica seeing it (a spent
 * resume token): with a shared store (Redis, DynamoDB), the store must confirm within a short
 * deadline, or the request is refused with 503 STATE_UNAVAILABLE. Deciding in one replica alone would let another replica
 * (or one started later) accept the same thing again. Rate limits and pacing do not use this: they
 * keep their per-replica fallback, which loosens a limit but breaks no promise.
 */

/** Seconds a refused caller should wait: about as long as a store's client takes to reconnect. */
export const STATE_RETRY_AFTER_SECONDS = 5

export interface SharedOrUnavailableOptions {
  /** Longest wait for the store's answer; past it the answer no longer counts. */
  timeoutMs: number
  /** What the caller is told when the store does not confirm. */
  message?: string
}

/**
 * Runs one shared-state command; throws StateUnavailable when it fails or has not answered within
 * `timeoutMs`. A late answer is dropped: the caller has already been refused, so whatever the
 * command did must be safe to leave (an expiring hold, say).
 */
export async function sharedOrUnavailable<T> (run: () => Promise<T>, { timeoutMs, message }: SharedOrUnavailableOptions): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
  })
  const command = run()
  try {
    return await Promise.race([command, late])
  } catch (err) {
    command.catch(() => {})
    throw new StateUnavailable(message ?? 'Shared state cannot be checked right now; please try again shortly',
      { retryAfterSeconds: STATE_RETRY_AFTER_SECONDS, cause: err })
  } finally {
    clearTimeout(timer)
  }
}

export interface StateGuardOptions {
  timeoutMs: number
  /** The store's name in the log: Redis, DynamoDB. */
  storeName: string
  log?: { warn (obj: object, msg: string): void; info (obj: object, msg: string): void }
  /** A request was refused because the store did not confirm (for a metric), by use. */
  onRefused?: (use: string) => void
  /** The clock of the outage's length in the log (the system clock by default). */
  now?: () => number
}

/** sharedOrUnavailable for one app, with one log line when an outage starts and one when it ends. */
export type StateGuard = <T>(use: string, run: () => Promise<T>, message?: string) => Promise<T>

export function createStateGuard ({ timeoutMs, storeName, log, onRefused, now = Date.now }: StateGuardOptions): StateGuard {
  let outageSince: number | undefined
  return async (use, run, message) => {
    try {
      const value = await sharedOrUnavailable(run, { timeoutMs, message })
      if (outageSince !== undefined) {
        log?.info({ use, outageMs: now() - outageSince }, `${storeName} confirms shared state again: refused requests are served again`)
        outageSince = undefined
      }
      return value
    } catch (err) {
      onRefused?.(use)
      if (outageSince === undefined) {
        outageSince = now()
        const cause = (err as Error).cause as Error | undefined
        log?.warn({ use, reason: cause?.message, timeoutMs },
          `${storeName} cannot confirm shared state: requests that depend on it (resume tokens, human-check proofs) are refused with 503 STATE_UNAVAILABLE until it is back`)
      }
      throw err
    }
  }
}
