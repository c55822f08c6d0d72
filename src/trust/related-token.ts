import { RelatedTokenRefused } from '../errors.js'
import { SignedTokens } from './signed-token.js'

// Connect copies a related contact's attributes into the new chat, so a raw contact id from a
// browser could pull someone else's context into it. A related chat starts only from this token,
// handed out with the chat it continues from and bound the way a resume token is.
export const RELATED_TOKEN_TYP = 'ccg-related+jwt'

/** What a related-chat token proves: we started this contact, on this widget, for this customer. */
export interface RelatedClaims {
  contactId: string
  /** Subject of the verified customer it was issued to: only they may use it. */
  customer?: string
  /** The widget profile it was issued on (none for the default profile). */
  widget?: string
}

export class RelatedTokens {
  private readonly tokens: SignedTokens

  constructor (keys: Uint8Array[], private readonly ttlSeconds: number, now?: () => number) {
    this.tokens = new SignedTokens(keys, RELATED_TOKEN_TYP, now)
  }

  issue (claims: RelatedClaims): string {
    const iat = this.tokens.nowSeconds()
    return this.tokens.sign({
      sub: claims.contactId,
      ...(claims.customer !== undefined ? { cus: claims.customer } : {}),
      ...(claims.widget !== undefined ? { wid: claims.widget } : {}),
      iat,
      exp: iat + this.ttlSeconds
    })
  }

  /** The claims of a token we signed and that has not expired; else RelatedTokenRefused. */
  async verify (token: string): Promise<RelatedClaims> {
    const checked = await this.tokens.verify(token, ['sub', 'iat', 'exp'])
    if (!checked.ok) {
      throw new RelatedTokenRefused(checked.expired ? 'The related-chat token has expired; start a new chat instead' : 'The related-chat token is not valid')
    }
    const { sub, cus, wid } = checked.payload
    if ((cus !== undefined && typeof cus !== 'string') || (wid !== undefined && typeof wid !== 'string')) {
      throw new RelatedTokenRefused('The related-chat token is not valid')
    }
    return { contactId: sub!, ...(cus !== undefined ? { customer: cus } : {}), ...(wid !== undefined ? { widget: wid } : {}) }
  }
}
