import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { sharedOrUnavailable, type StateGuard } from '../shared-state.js'

/**
 * Which chats have already been continued. A resume token opens one continued chat: it is held
 * while its StartChatContact runs (so concurrent uses reach Connect at most once), spent when
 * Connect accepts, and let go when the call fails (a Connect error must not burn the customer's
 * token). Without shared state, remembered in this process. With it (Redis, DynamoDB), the store must
 * confirm the hold or the resume is refused (StateUnavailable): a hold taken in one replica's memory
 * alone would let another replica, or one started later, accept the same token again.
 *
 * Keyed by the contact the token names, not by the token's text: every token ever issued for that
 * contact (a double click returns the same contact twice) is spent together, and a re-encoded copy
 * of a token cannot pass as a new one.
 */
export interface SpentResumes {
  /**
   * Holds `contactId` until spend() or release(), for `ttlMs` at most; undefined when it is held or
   * spent already. Throws StateUnavailable when shared state is configured and does not confirm.
   */
  hold (contactId: string, ttlMs: number): Promise<Hold | undefined>
}

export interface Hold {
  /** Connect accepted the continued chat: the token stays spent until its hold's `ttlMs` ends. */
  spend (): Promise<void>
  /** The call failed: the token may be used again. */
  release (): Promise<void>
}

/** Entries kept in memory at most; past it the oldest are forgotten (they expire long before, in practice). */
const LOCAL_MAX = 100_000

class LocalLedger {
  private readonly entries = new Map<string, { holder: string; until: number; spent?: true }>()
  constructor (private readonly now: () => number) {}

  hold (key: string, holder: string, ms: number): boolean {
    const now = this.now()
    const entry = this.entries.get(key)
    if (entry && entry.until > now) return false
    this.entries.delete(key)
    if (this.entries.size >= LOCAL_MAX) this.entries.delete(this.entries.keys().next().value!)
    this.entries.set(key, { holder, until: now + ms })
    return true
  }

  spend (key: string, holder: string): void {
    const entry = this.entries.get(key)
    if (entry?.holder === holder) entry.spent = true
  }

  /** Our hold goes, unless it was spent: a late release must not free a spent token. */
  release (key: string, holder: string): void {
    const entry = this.entries.get(key)
    if (entry?.holder === holder && !entry.spent) this.entries.delete(key)
  }
}

/**
 * Where holds are kept for every replica (Redis, DynamoDB). Each call is one atomic, conditional
 * write: a hold is taken only where none stands, spent and released only by its holder.
 */
export interface SharedHolds {
  /** Holds `key` for `holder` for `ttlMs`; false when a hold or a spend of anyone's stands. */
  hold (key: string, holder: string, ttlMs: number): Promise<boolean>
  /** Our hold becomes spent, for `ttlMs` from now. */
  spend (key: string, holder: string, ttlMs: number): Promise<void>
  /** Our hold goes, unless it was spent (a late release must not free a spent token) or is not ours. */
  release (key: string, holder: string): Promise<void>
}

// Deletes the hold only if it is still ours and not spent: a late release must not free a spent token.
const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

interface LedgerRedis { ccgResumeRelease (key: string, holder: string): Promise<number> }

/** Holds in Redis: `held:<holder>` while held, `spent:<holder>` once spent, expiring with the hold. */
export function redisHolds (redis: Redis): SharedHolds {
  const r = redis as Redis & Partial<LedgerRedis>
  if (typeof r.ccgResumeRelease !== 'function') redis.defineCommand('ccgResumeRelease', { numberOfKeys: 1, lua: RELEASE_LUA })
  const ledger = redis as Redis & LedgerRedis
  return {
    hold: async (key, holder, ttlMs) => await ledger.set(key, `held:${holder}`, 'PX', ttlMs, 'NX') !== null,
    spend: async (key, holder, ttlMs) => { await ledger.set(key, `spent:${holder}`, 'PX', ttlMs, 'XX') },
    release: async (key, holder) => { await ledger.ccgResumeRelease(key, `held:${holder}`) }
  }
}

export interface SpentResumesOptions {
  /** Holds shared by every replica; in this process only without them. */
  shared?: SharedHolds
  keyPrefix?: string
  /** The app's fail-closed rule for shared state (one outage log for every use); a bare deadline without it. */
  guard?: StateGuard
  /** The shared store did not take a spend or a release (the hold stands; a release failing keeps the token spent). */
  onSharedFailed?: (err: unknown) => void
  /** The clock of this process's own holds. */
  now?: () => number
}

export function createSpentResumes (options: SpentResumesOptions = {}): SpentResumes {
  const local = new LocalLedger(options.now ?? Date.now)
  const { shared } = options
  const prefix = `${options.keyPrefix ?? ''}resume-spent:`
  const message = 'Whether this resume token was used cannot be checked right now; please try again shortly'
  const guard: StateGuard = options.guard ?? ((_use, run) => sharedOrUnavailable(run, { timeoutMs: 250, message }))

  /** Best effort: a failure leaves the hold standing until it expires, the safe side. */
  const quietly = (run: () => Promise<unknown>) => run().then(() => {}, (err: unknown) => { options.onSharedFailed?.(err) })

  return {
    async hold (contactId, ttlMs) {
      const key = prefix + contactId
      const holder = randomUUID()
      // This replica's own memory first: a second use here is refused without asking the shared store.
      if (!local.hold(key, holder, ttlMs)) return undefined
      if (shared) {
        // Held for the token's whole life at once, so a spend that the store misses later loses nothing.
        let taken: boolean
        try {
          taken = await guard('resume_tokens', () => shared.hold(key, holder, ttlMs), message)
        } catch (err) {
          local.release(key, holder)
          // A hold that lands after the deadline would hold the token for nobody: take it back.
          void quietly(() => shared.release(key, holder))
          throw err
        }
        if (!taken) {
          local.release(key, holder)
          return undefined
        }
      }
      return {
        async spend () {
          local.spend(key, holder)
          if (shared) await quietly(() => shared.spend(key, holder, ttlMs))
        },
        async release () {
          local.release(key, holder)
          if (shared) await quietly(() => shared.release(key, holder))
        }
      }
    }
  }
}
