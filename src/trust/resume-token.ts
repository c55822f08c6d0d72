import { ResumeTokenRefused } from '../errors.js'
import { SignedTokens } from './signed-token.js'

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
// secret (a customer token, an end token), and the other way round.
export const RESUME_TOKEN_TYP = 'ccg-resume+jwt'

/** Signs and verifies resume tokens: compact JWS (HS256) the widget keeps and sends back opaquely. */
export class ResumeTokens {
  private readonly tokens: SignedTokens
  private readonly ttlSeconds: number

  constructor (options: ResumeTokensOptions) {
    if (options.keys.length === 0) throw new TypeError('ResumeTokens needs at least one key')
    this.tokens = new SignedTokens(options.keys, RESUME_TOKEN_TYP, options.now)
    this.ttlSeconds = options.ttlSeconds
  }

  async issue (claims: ResumeClaims): Promise<string> {
    const iat = this.tokens.nowSeconds()
    // `ini` is left out for a chat that starts its own chain, which keeps most tokens shorter.
    const payload: Record<string, unknown> = claims.initialContactId === claims.contactId ? {} : { ini: claims.initialContactId }
    if (claims.customer !== undefined) payload.cus = claims.customer
    if (claims.unverifiedSource) payload.unv = true
    if (claims.widget !== undefined) payload.wid = claims.widget
    payload.sub = claims.contactId
    payload.iat = iat
    payload.exp = iat + this.ttlSeconds
    return this.tokens.sign(payload)
  }

  /** The claims of a token we signed with any configured key and that has not expired; else ResumeTokenRefused. */
  async verify (token: string): Promise<ResumeClaims> {
    const checked = await this.tokens.verify(token, ['sub', 'iat', 'exp'])
    if (checked.ok) {
      const { sub: contactId, ini, cus, unv, wid } = checked.payload
      if ((ini === undefined || (typeof ini === 'string' && ini !== '')) && (cus === undefined || typeof cus === 'string') &&
        (wid === undefined || typeof wid === 'string')) {
        return {
          contactId: contactId!,
          initialContactId: ini ?? contactId!,
          ...(cus !== undefined ? { customer: cus } : {}),
          ...(unv === true ? { unverifiedSource: true } : {}),
          ...(wid !== undefined ? { widget: wid } : {})
        }
      }
    } else if (checked.expired) {
      throw new ResumeTokenRefused('The resume token has expired; start a new chat instead')
    }
    throw new ResumeTokenRefused('The resume token is not valid; start a new chat instead')
  }
}
