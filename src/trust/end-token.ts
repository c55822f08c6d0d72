import { EndTokenRefused } from '../errors.js'
import { SignedTokens } from './signed-token.js'

export const END_TOKEN_TYP = 'ccg-end+jwt'

/** What an end token proves: we started this contact on this widget, and it may still be open. */
export interface EndClaims { contactId: string; widget?: string }

/**
 * End tokens: handed out with each started chat, valid for that chat's duration, and accepted by
 * POST /chat/end to stop it. Not single-use: ending an ended chat is harmless and answers the same.
 */
export class EndTokens {
  private readonly tokens: SignedTokens

  constructor (keys: Uint8Array[], now?: () => number) {
    this.tokens = new SignedTokens(keys, END_TOKEN_TYP, now)
  }

  issue (claims: EndClaims, lifetimeSeconds: number): string {
    const iat = this.tokens.nowSeconds()
    return this.tokens.sign({
      sub: claims.contactId,
      ...(claims.widget !== undefined ? { wid: claims.widget } : {}),
      iat,
      exp: iat + lifetimeSeconds
    })
  }

  /** The contact of a token we signed for `widget` (undefined: the default profile); else EndTokenRefused. */
  async verify (token: string, widget: string | undefined): Promise<EndClaims> {
    const checked = await this.tokens.verify(token, ['sub', 'iat', 'exp'])
    if (!checked.ok) {
      throw new EndTokenRefused(checked.expired ? 'This chat has outlived its end token; it has ended already' : 'The end token is not valid')
    }
    const { sub, wid } = checked.payload
    if (wid !== widget) throw new EndTokenRefused('This end token belongs to another chat widget')
    return { contactId: sub!, ...(widget !== undefined ? { widget } : {}) }
  }
}
