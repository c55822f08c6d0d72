import type { ConnectClient } from '@aws-sdk/client-connect'
import { systemClock, type Clock, type Timer } from '../clock.js'

export interface CredentialsEvents {
  /** Resolved: `provider` names where they came from (never the keys). */
  resolved: (info: { provider: string; expiresAt?: string }) => void
  /** None of the providers gave credentials; tried again after `retryInMs`. */
  failed: (info: { reason: string; errorName: string; attempt: number; retryInMs: number }) => void
}

export interface CredentialsWatch {
  /** Why this replica is not ready yet, or undefined once the credentials have resolved. */
  readonly notReadyReason: string | undefined
  /** Settles when the first attempt has ended, either way, or after `waitMs`, whichever is first. */
  readonly firstAttempt: Promise<void>
  close (): void
}

export interface CredentialsWatchOptions {
  events: CredentialsEvents
  /** How long start-up waits for the first attempt (the instance metadata service can hang). */
  waitMs?: number
  /** Backoff between failed attempts: doubles from `minBackoffMs` up to `maxBackoffMs`. */
  minBackoffMs?: number
  maxBackoffMs?: number
  /** The time of the wait and the backoff (the system clock by default). */
  clock?: Clock
}

/**
 * Which provider of the SDK's chain supplied the credentials. The SDK tags what its providers
 * return with `$source` (credential feature ids such as CREDENTIALS_ENV_VARS, CREDENTIALS_HTTP for
 * ECS, CREDENTIALS_IMDS, CREDENTIALS_CODE for keys handed to the client).
 */
function providerOf (credentials: object): string {
  const source = (credentials as { $source?: Record<string, string> }).$source
  const names = source ? Object.keys(source) : []
  return names.length > 0 ? names.join(',') : 'unknown'
}

const MAX_REASON = 300

/**
 * Resolves the client's credentials once at start-up, through the client's own provider (the one
 * every call uses, so what resolves here is what Connect will see), and again with backoff until
 * that works. Readiness follows: a replica that cannot sign a single request takes no traffic.
 */
export function watchCredentials (client: ConnectClient, options: CredentialsWatchOptions): CredentialsWatch {
  const minBackoffMs = options.minBackoffMs ?? 1_000
  const maxBackoffMs = options.maxBackoffMs ?? 60_000
  const clock = options.clock ?? systemClock
  let notReadyReason: string | undefined = 'AWS credentials have not resolved yet'
  let closed = false
  let timer: Timer | undefined
  let attempt = 0

  const tryOnce = async (): Promise<void> => {
    attempt++
    try {
      const credentials = await client.config.credentials()
      if (closed) return
      notReadyReason = undefined
      options.events.resolved({ provider: providerOf(credentials), expiresAt: credentials.expiration?.toISOString() })
    } catch (err) {
      if (closed) return
      const { name = 'Error', message = String(err) } = (err ?? {}) as { name?: string; message?: string }
      // The provider chain's message says what was tried; it never holds the keys themselves.
      const reason = message.slice(0, MAX_REASON)
      notReadyReason = `no AWS credentials: ${reason}`
      const retryInMs = Math.min(maxBackoffMs, minBackoffMs * 2 ** Math.min(attempt - 1, 20))
      options.events.failed({ reason, errorName: name, attempt, retryInMs })
      timer = clock.setTimeout(() => { void tryOnce() }, retryInMs, { unref: true })
    }
  }

  const first = tryOnce()
  let waited: Timer | undefined
  const firstAttempt = Promise.race([
    first,
    // Not unref'd: start-up awaits it, and nothing else may hold the process open yet.
    new Promise<void>((resolve) => { waited = clock.setTimeout(resolve, options.waitMs ?? 5_000) })
  ]).finally(() => clock.clearTimeout(waited))

  return {
    get notReadyReason () { return notReadyReason },
    firstAttempt,
    close () {
      closed = true
      clock.clearTimeout(timer)
    }
  }
}
