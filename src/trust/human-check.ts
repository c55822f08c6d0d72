import { createHash, createHmac } from 'node:crypto'
import type { Redis } from 'ioredis'
import { createChallenge, randomInt, verifySolution, type Challenge, type Solution } from 'altcha-lib'
import { deriveKey } from 'altcha-lib/algorithms/pbkdf2'
import { HumanCheckRequired, HumanCheckUnavailable } from '../errors.js'
import { sharedOrUnavailable, type StateGuard } from '../shared-state.js'

export type HumanCheckKind = 'off' | 'pow' | 'turnstile' | 'hcaptcha' | 'recaptcha'

/** Where each provider verifies its tokens (server to server); HUMAN_CHECK_VERIFY_URL replaces it. */
export const PROVIDER_VERIFY_URL: Record<Exclude<HumanCheckKind, 'off' | 'pow'>, string> = {
  turnstile: 'https://challenges.cloudflare.com/turnstile/v0/siteverify',
  hcaptcha: 'https://api.hcaptcha.com/siteverify',
  recaptcha: 'https://www.google.com/recaptcha/api/siteverify'
}

/** The proof-of-work's cost: PBKDF2 iterations per try, and the range of tries the answer lies in. */
export interface PowDifficulty { cost: number; counterMin: number; counterMax: number }
// A few seconds of a phone's browser, a few milliseconds of ours to check (one derivation).
export const POW_DIFFICULTY: PowDifficulty = { cost: 5_000, counterMin: 5_000, counterMax: 10_000 }
const CHALLENGE_TTL_S = 300
const PROVIDER_TOKEN_TTL_MS = 10 * 60_000

/** Proofs seen already: each opens one chat. Shared between replicas; a store that cannot say refuses. */
export interface SpentProofs {
  /** True the first time `id` is claimed; StateUnavailable when shared state cannot say. */
  claim (id: string, ttlMs: number): Promise<boolean>
}

/** Claims every replica sees: true when `key` was free (or its claim expired), as one conditional write. */
export type SharedClaim = (key: string, ttlMs: number) => Promise<boolean>

export const redisClaim = (redis: Redis): SharedClaim => async (key, ttlMs) => await redis.set(key, '1', 'PX', ttlMs, 'NX') === 'OK'

export function createSpentProofs (options: { shared?: SharedClaim; guard?: StateGuard; keyPrefix?: string; now?: () => number } = {}): SpentProofs {
  const { shared } = options
  if (shared) {
    const prefix = `${options.keyPrefix ?? ''}proof-spent:`
    // A proof whose use cannot be recorded for every replica could be used on each of them: refused.
    const guard = options.guard ?? ((_use, run, message) => sharedOrUnavailable(run, { timeoutMs: 250, message }))
    return {
      async claim (id, ttlMs) {
        return await guard('human_check', () => shared(prefix + id, ttlMs), 'The human check cannot be confirmed right now; please try again shortly')
      }
    }
  }
  const now = options.now ?? Date.now
  const seen = new Map<string, number>()
  return {
    async claim (id, ttlMs) {
      const t = now()
      // Expired entries go on each claim, so the map holds at most the proofs of one TTL.
      for (const [key, until] of seen) { if (until > t) break; seen.delete(key) }
      if ((seen.get(id) ?? 0) > t) return false
      seen.set(id, t + ttlMs)
      return true
    }
  }
}

export interface HumanCheckOptions {
  kind: HumanCheckKind
  when: 'always' | 'busy'
  /** The provider's secret; for pow the challenge signing key. */
  secret: string
  verifyUrl?: string
  spent: SpentProofs
  /** Bound on one call to the provider. */
  verifyTimeoutMs?: number
  pow?: PowDifficulty
  now?: () => number
}

/** Where the proof came from: the page's Origin (if any), the caller's address, the widget's origins. */
export interface ProofContext {
  origin?: string
  remoteIp: string
  isOriginAllowed (origin: string): boolean
}

/**
 * A human check asked of anonymous callers: a self-hosted proof of work in the ALTCHA format, or a
 * provider's token (Turnstile, hCaptcha, reCAPTCHA) verified server to server. Every proof opens
 * at most one chat, and a check that cannot be made refuses the start (fails closed).
 */
export class HumanCheck {
  private readonly now: () => number
  private readonly keySecret: string

  constructor (private readonly options: HumanCheckOptions) {
    this.now = options.now ?? Date.now
    this.keySecret = createHmac('sha256', options.secret).update('altcha key signature').digest('hex')
  }

  get kind (): HumanCheckKind { return this.options.kind }
  get when (): 'always' | 'busy' { return this.options.when }

  /** A fresh, signed, expiring ALTCHA challenge (pow only). */
  async challenge (): Promise<Challenge> {
    const { cost, counterMin, counterMax } = this.options.pow ?? POW_DIFFICULTY
    return createChallenge({
      algorithm: 'PBKDF2/SHA-256',
      cost,
      counter: randomInt(counterMax, counterMin),
      deriveKey,
      expiresAt: Math.floor(this.now() / 1000) + CHALLENGE_TTL_S,
      hmacSignatureSecret: this.options.secret,
      hmacKeySignatureSecret: this.keySecret
    })
  }

  /** Passes when `proof` is a valid proof not used before; else HumanCheckRequired (or 503 when it cannot be checked). */
  async verify (proof: string | undefined, context: ProofContext): Promise<void> {
    if (proof === undefined || proof === '' || proof.length > 8_192) throw this.required('A human check is required before a chat can start')
    if (this.options.kind === 'pow') return this.verifyPow(proof)
    return this.verifyProvider(proof, context)
  }

  private required (message: string): HumanCheckRequired {
    const error = new HumanCheckRequired(message)
    error.humanCheck = this.options.kind
    return error
  }

  private async verifyPow (proof: string): Promise<void> {
    let payload: { challenge?: Challenge; solution?: Solution } | undefined
    try { payload = JSON.parse(Buffer.from(proof, 'base64').toString('utf8')) as typeof payload } catch { payload = undefined }
    const { challenge, solution } = payload ?? {}
    if (typeof challenge?.parameters?.nonce !== 'string' || typeof solution !== 'object' || solution === null) {
      throw this.required('The human check is not valid; solve a new challenge')
    }
    let verified = false
    let expired = false
    try {
      const result = await verifySolution({ challenge, solution, deriveKey, hmacSignatureSecret: this.options.secret, hmacKeySignatureSecret: this.keySecret })
      verified = result.verified
      expired = result.expired
    } catch {
      // A malformed challenge or solution makes the library throw: the same answer as a wrong one.
    }
    if (!verified) throw this.required(expired ? 'The human check has expired; solve a new challenge' : 'The human check is not valid; solve a new challenge')
    // Signed and unexpired, so the nonce is ours: each challenge opens one chat.
    if (!await this.options.spent.claim(`pow:${challenge.parameters.nonce}`, CHALLENGE_TTL_S * 1000)) {
      throw this.required('This human check was used already; solve a new challenge')
    }
  }

  private async verifyProvider (token: string, context: ProofContext): Promise<void> {
    const kind = this.options.kind as keyof typeof PROVIDER_VERIFY_URL
    const form = new URLSearchParams({ secret: this.options.secret, response: token, remoteip: context.remoteIp })
    let answer: { success?: unknown; hostname?: unknown }
    try {
      const res = await fetch(this.options.verifyUrl ?? PROVIDER_VERIFY_URL[kind], {
        method: 'POST',
        body: form,
        signal: AbortSignal.timeout(this.options.verifyTimeoutMs ?? 3_000)
      })
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      answer = await res.json() as typeof answer
    } catch (err) {
      throw new HumanCheckUnavailable('The human check cannot be verified right now; please try again shortly', { retryAfterSeconds: 5, cause: err })
    }
    if (answer.success !== true) throw this.required('The human check did not pass; please try again')
    // A token solved on another site (or another widget's) proves nothing about this page.
    if (typeof answer.hostname !== 'string' || !this.hostnameAllowed(answer.hostname, context)) {
      throw this.required('The human check was solved on another site')
    }
    // Providers refuse a second verify of a token too; our own record also holds across replicas.
    const id = createHash('sha256').update(token).digest('base64url')
    if (!await this.options.spent.claim(`${kind}:${id}`, PROVIDER_TOKEN_TTL_MS)) throw this.required('This human check was used already')
  }

  private hostnameAllowed (hostname: string, context: ProofContext): boolean {
    if (context.origin !== undefined) {
      try { return new URL(context.origin).hostname === hostname.toLowerCase() } catch { return false }
    }
    // A mobile app sends no Origin: the provider's hostname must still be one of the widget's sites.
    return /^[a-z0-9.-]+$/i.test(hostname) && context.isOriginAllowed(`https://${hostname.toLowerCase()}`)
  }
}
