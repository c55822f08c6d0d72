import { errors, jwtVerify } from 'jose'
import { createHmac, createSecretKey, webcrypto, type KeyObject } from 'node:crypto'
import { ResumeTokenRefused } from '../errors.js'

/** What a resume token proves: the caller was handed this chat by us, and when. */
export interface ResumeClaims {
  contactId: string
  /** First contact of the persistent-chat chain: what ENTIRE_PAST_SESSION needs as its source. */
  initialContactId: string
  /** Subject of the verified customer it was issued to: only they may use it. */
  customer?: string
  /** Its chain began at a source contact the service did not verify (PERSISTENT_CHAT=unverified). */
  unverifiedSource?: boolean
  /** The widget profile it was issued on (none for the default profile): only that one accepts it. */
  widget?: string
}

export interface ResumeTokensOptions {
  /** Signing keys: the first signs, every one verifies (rotation). At least one. */
  keys: Uint8Array[]
  ttlSeconds: number
  /** Clock, for tests. */
  now?: () => number
}

// A distinct typ keeps a resume token from passing as any other HS256 token signed with the same
// secret (a customer token, say), and the other way round.
export const RESUME_TOKEN_TYP = 'ccg-resume+jwt'
const ALGORITHM = 'HS256'
// The protected header never changes; its base64url form is the first part of every token.
const HEADER = Buffer.from(JSON.stringify({ alg: ALGORITHM, typ: RESUME_TOKEN_TYP })).toString('base64url')

/** Signs and verifies resume tokens: compact JWS (HS256) the widget keeps and sends back opaquely. */
export class ResumeTokens {
  // Imported once: handing jose raw bytes makes it import the key again on every sign and verify,
  // which was most of the cost of issuing a token (docs/BENCHMARKS.md).
  private readonly keys: Promise<webcrypto.CryptoKey[]>
  private readonly signingKey: KeyObject
  private readonly ttlSeconds: number
  private readonly now: () => number

  constructor (options: ResumeTokensOptions) {
    if (options.keys.length === 0) throw new TypeError('ResumeTokens needs at least one key')
    this.keys = Promise.all(options.keys.map((raw) =>
      webcrypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify'])))
    this.signingKey = createSecretKey(options.keys[0]!)
    this.ttlSeconds = options.ttlSeconds
    this.now = options.now ?? Date.now
  }

  async issue (claims: ResumeClaims): Promise<string> {
    const iat = Math.floor(this.now() / 1000)
    // `ini` is left out for a chat that starts its own chain, which keeps most tokens shorter.
    const payload: Record<string, unknown> = claims.initialContactId === claims.contactId ? {} : { ini: claims.initialContactId }
    if (claims.customer !== undefined) payload.cus = claims.customer
    if (claims.unverifiedSource) payload.unv = true
    if (claims.widget !== undefined) payload.wid = claims.widget
    payload.sub = claims.contactId
    payload.iat = iat
    payload.exp = iat + this.ttlSeconds
    // A compact JWS signed in place: one token per chat start, and jose's sign goes through
    // WebCrypto's job queue (several times the cost). The bytes are what jose would produce, and
    // verify() below still checks with jose (test/trust/resume-token.test.ts cross-checks both).
    const signingInput = `${HEADER}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`
    return `${signingInput}.${createHmac('sha256', this.signingKey).update(signingInput).digest('base64url')}`
  }

  /** The claims of a token we signed with any configured key and that has not expired; else ResumeTokenRefused. */
  async verify (token: string): Promise<ResumeClaims> {
    for (const key of await this.keys) {
      try {
        const { payload } = await jwtVerify(token, key, {
          algorithms: [ALGORITHM],
          typ: RESUME_TOKEN_TYP,
          requiredClaims: ['sub', 'iat', 'exp'],
          currentDate: new Date(this.now())
        })
        const contactId = payload.sub!
        const { ini, cus, unv, wid } = payload
        if (ini !== undefined && (typeof ini !== 'string' || ini === '')) break
        if (cus !== undefined && typeof cus !== 'string') break
        if (wid !== undefined && typeof wid !== 'string') break
        return {
          contactId,
          initialContactId: ini ?? contactId,
          ...(cus !== undefined ? { customer: cus } : {}),
          ...(unv === true ? { unverifiedSource: true } : {}),
          ...(wid !== undefined ? { widget: wid } : {})
        }
      } catch (err) {
        // Another key may have signed it; anything else (expired, malformed) is final.
        if (err instanceof errors.JWSSignatureVerificationFailed) continue
        if (err instanceof errors.JWTExpired) throw new ResumeTokenRefused('The resume token has expired; start a new chat instead')
        break
      }
    }
    throw new ResumeTokenRefused('The resume token is not valid; start a new chat instead')
  }
}
