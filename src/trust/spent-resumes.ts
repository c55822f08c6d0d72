import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'

/**
 * Which chats have already been continued. A resume token opens one continued chat: it is held
 * while its StartChatContact runs (so concurrent uses reach Connect at most once), spent when
 * Connect accepts, and let go when the call fails (a Connect error must not burn the customer's
 * token). Kept in Redis for all replicas; in this process alone without Redis, or while it is down.
 *
 * Keyed by the contact the token names, not by the token's text: every token ever issued for that
 * contact (a double click returns the same contact twice) is spent together, and a re-encoded copy
 * of a token cannot pass as a new one.
 */
export interface SpentResumes {
  /** Holds `contactId` for `holdMs`; false when it is held or spent already. */
  hold (contactId: string, holdMs: number): Promise<Hold | undefined>
}

export interface Hold {
  /** Connect accepted the continued chat: remember it for `ttlMs`. */
  spend (ttlMs: number): Promise<void>
  /** The call failed: the token may be used again. */
  release (): Promise<void>
}

/** Entries kept in memory at most; past it the oldest are forgotten (they expire long before, in practice). */
const LOCAL_MAX = 100_000

class LocalLedger {
  private readonly entries = new Map<string, { holder: string; until: number }>()

  hold (key: string, holder: string, ms: number): boolean {
    const now = Date.now()
    const entry = this.entries.get(key)
    if (entry && entry.until > now) return false
    this.set(key, holder, now + ms)
    return true
  }

  set (key: string, holder: string, until: number): void {
    this.entries.delete(key)
    if (this.entries.size >= LOCAL_MAX) this.entries.delete(this.entries.keys().next().value!)
    this.entries.set(key, { holder, until })
  }

  release (key: string, holder: string): void {
    if (this.entries.get(key)?.holder === holder) this.entries.delete(key)
  }
}

// Deletes the hold only if it is still ours: a hold that expired may belong to someone else now.
const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

interface LedgerRedis { ccgResumeRelease (key: string, holder: string): Promise<number> }

export interface SpentResumesOptions {
  redis?: Redis
  keyPrefix?: string
  /** A Redis command failed: the decision is taken in this process instead. */
  onRedisFailed?: (err: unknown) => void
}

export function createSpentResumes (options: SpentResumesOptions = {}): SpentResumes {
  const local = new LocalLedger()
  const redis = options.redis as (Redis & Partial<LedgerRedis>) | undefined
  if (redis && typeof redis.ccgResumeRelease !== 'function') redis.defineCommand('ccgResumeRelease', { numberOfKeys: 1, lua: RELEASE_LUA })
  const prefix = `${options.keyPrefix ?? ''}resume-spent:`

  async function shared<T> (run: (r: Redis & LedgerRedis) => Promise<T>): Promise<T | undefined> {
    if (!redis) return undefined
    try {
      return await run(redis as Redis & LedgerRedis)
    } catch (err) {
      options.onRedisFailed?.(err)
      return undefined
    }
  }

  return {
    async hold (contactId, holdMs) {
      const key = prefix + contactId
      const holder = randomUUID()
      // This replica's own memory first: it also answers while Redis is down.
      if (!local.hold(key, holder, holdMs)) return undefined
      const reply = await shared((r) => r.set(key, holder, 'PX', holdMs, 'NX'))
      if (reply === null) {
        local.release(key, holder)
        return undefined
      }
      return {
        async spend (ttlMs) {
          local.set(key, holder, Date.now() + ttlMs)
          await shared((r) => r.set(key, `spent:${holder}`, 'PX', ttlMs))
        },
        async release () {
          local.release(key, holder)
          await shared((r) => r.ccgResumeRelease(key, holder))
        }
      }
    }
  }
}
