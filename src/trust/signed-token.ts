import { errors, jwtVerify, type JWTPayload } from 'jose'
import { createHmac, createSecretKey, webcrypto, type KeyObject } from 'node:crypto'

export type TokenCheck = { ok: true; payload: JWTPayload } | { ok: false; expired: boolean }

/**
 * Compact JWS (HS256) tokens of one kind, told apart by `typ`, so a token of one kind never passes
 * as another signed with the same secret. Several keys rotate: the first signs, every one verifies.
 */
export class SignedTokens {
  // Imported once: handing jose raw bytes makes it import the key again on every verify.
  private readonly keys: Promise<webcrypto.CryptoKey[]>
  private readonly signingKey: KeyObject
  private readonly header: string

  constructor (keys: Uint8Array[], private readonly typ: string, private readonly now: () => number = Date.now) {
    if (keys.length === 0) throw new TypeError('SignedTokens needs at least one key')
    this.keys = Promise.all(keys.map((raw) =>
      webcrypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify'])))
    this.signingKey = createSecretKey(keys[0]!)
    // The protected header never changes; its base64url form is the first part of every token.
    this.header = Buffer.from(JSON.stringify({ alg: 'HS256', typ })).toString('base64url')
  }

  /** Seconds since the epoch by this signer's clock. */
  nowSeconds (): number { return Math.floor(this.now() / 1000) }

  /**
   * Signed in place: jose's sign goes through WebCrypto's job queue (several times the cost), and
   * one token is signed per chat start. The bytes are what jose would produce; verify() uses jose.
   */
  sign (payload: Record<string, unknown>): string {
    const signingInput = `${this.header}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`
    return `${signingInput}.${createHmac('sha256', this.signingKey).update(signingInput).digest('base64url')}`
  }

  /** The payload of a token of this kind that any key signed and that has not expired. */
  async verify (token: string, requiredClaims: string[]): Promise<TokenCheck> {
    for (const key of await this.keys) {
      try {
        const { payload } = await jwtVerify(token, key, {
          algorithms: ['HS256'], typ: this.typ, requiredClaims, currentDate: new Date(this.now())
        })
        return { ok: true, payload }
      } catch (err) {
        // Another key may have signed it; anything else (expired, malformed) is final.
        if (err instanceof errors.JWSSignatureVerificationFailed) continue
        return { ok: false, expired: err instanceof errors.JWTExpired }
      }
    }
    return { ok: false, expired: false }
  }
}
