import { webcrypto } from 'node:crypto'
import {
  createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify,
  type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions
} from 'jose'
import { Value } from 'typebox/value'
import { CustomerTokenInvalid } from '../errors.js'
import { Attributes } from '../shapes.js'
import { END_TOKEN_TYP } from './end-token.js'
import { RELATED_TOKEN_TYP } from './related-token.js'
import { RESUME_TOKEN_TYP } from './resume-token.js'

/** Our own tokens, never a customer's, whatever key signed them. */
const OWN_TYPES = new Set([RESUME_TOKEN_TYP, RELATED_TOKEN_TYP, END_TOKEN_TYP])

export interface CustomerTokenOptions {
  /** HS256 shared secret. */
  secret?: string
  /** JWKS of RS256/ES256 keys. */
  jwksUrl?: string
  audience?: string
  issuer?: string
  /** Bound on one JWKS fetch. */
  jwksTimeoutMs?: number
  /** Least time between JWKS refetches for unknown kids, and how long a failed endpoint is left alone. */
  jwksCooldownMs?: number
  /** How long fetched keys are used before they are refetched. */
  jwksCacheMaxAgeMs?: number
  clockToleranceSeconds?: number
  /** Longest lifetime a token may claim (exp - iat, or exp - now without iat). */
  maxLifetimeSeconds?: number
  /** Clock, for tests. */
  now?: () => number
  /** Told when the JWKS endpoint could not be read (cached keys, if any, are used meanwhile). */
  onJwksUnavailable?: (err: unknown) => void
}

export interface CustomerClaims {
  sub?: string
  attributes: Record<string, string>
  /** Every claim of the verified token, for a profile's claimAttributes and customerIdClaim. */
  claims: Readonly<Record<string, unknown>>
}

// The browser's attribute rules (key pattern, key length, count) apply to trusted attributes too.
const AttributesSchema = Attributes

// Pinned per key type: a token names its own alg, so it is only ever checked against the keys of
// that type. `none` and HS256-signed-with-the-public-key (algorithm confusion) have no path.
const HMAC_ALGS = ['HS256']
const JWKS_ALGS = ['RS256', 'ES256']

/**
 * A remote JWKS that survives its endpoint going down: after a failed fetch the keys fetched last
 * time answer on their own for a cooldown, so requests neither wait on a dead endpoint again nor
 * lose the keys that still verify; an unknown kid fails at once.
 */
function resilientJwks (url: URL, options: CustomerTokenOptions): JWTVerifyGetKey {
  const cooldownMs = options.jwksCooldownMs ?? 30_000
  const remote = createRemoteJWKSet(url, {
    timeoutDuration: options.jwksTimeoutMs ?? 2_000,
    cooldownDuration: cooldownMs,
    cacheMaxAge: options.jwksCacheMaxAgeMs ?? 600_000
  })
  let downUntil = 0
  let lastGood: JWTVerifyGetKey | undefined
  return async (header, token) => {
    if (Date.now() < downUntil) {
      if (lastGood) return lastGood(header, token)
      throw new errors.JWKSNoMatchingKey('JWKS endpoint unavailable')
    }
    try {
      return await remote(header, token)
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys || err instanceof errors.JOSENotSupported) throw err
      downUntil = Date.now() + cooldownMs
      options.onJwksUnavailable?.(err)
      const cached = remote.jwks()
      if (!cached) throw err
      lastGood = createLocalJWKSet(cached)
      return lastGood(header, token)
    }
  }
}

function problem (err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'The customer token has expired'
  if (err instanceof errors.JWTClaimValidationFailed && (err.claim === 'aud' || err.claim === 'iss')) {
    return 'The customer token was not issued for this service'
  }
  return 'The customer token is not valid'
}

/**
 * A customer token is a short-lived statement minted per page view. One that lives for days or
 * claims to be issued in the future is a leaked or hand-made credential, whatever its signature.
 */
function checkLifetime (payload: JWTPayload, options: CustomerTokenOptions): void {
  const now = Math.floor((options.now ?? Date.now)() / 1000)
  const tolerance = options.clockToleranceSeconds ?? 30
  const maxLifetime = options.maxLifetimeSeconds ?? 3600
  const { exp, iat } = payload
  if (iat !== undefined && iat > now + tolerance) throw new CustomerTokenInvalid('The customer token is issued in the future')
  if (exp !== undefined && exp - (iat ?? now) > maxLifetime) {
    throw new CustomerTokenInvalid(`The customer token lives longer than this service accepts (${maxLifetime} s)`)
  }
}

/** Verifies customer tokens; undefined when neither a secret nor a JWKS is configured. */
export function createCustomerTokenVerifier (options: CustomerTokenOptions): ((token: string) => Promise<CustomerClaims>) | undefined {
  // Imported once, not by jose on every request (see resume-token.ts).
  const secret = options.secret === undefined
    ? undefined
    : webcrypto.subtle.importKey('raw', new TextEncoder().encode(options.secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])
  const jwks = options.jwksUrl === undefined ? undefined : resilientJwks(new URL(options.jwksUrl), options)
  if (!secret && !jwks) return undefined
  const common: JWTVerifyOptions = {
    audience: options.audience,
    issuer: options.issuer,
    clockTolerance: options.clockToleranceSeconds ?? 30,
    requiredClaims: ['exp']
  }

  return async (token) => {
    let payload: JWTPayload
    try {
      const { alg, typ } = decodeProtectedHeader(token)
      if (typ !== undefined && OWN_TYPES.has(typ)) throw new CustomerTokenInvalid('The customer token is not valid')
      if (secret && alg !== undefined && HMAC_ALGS.includes(alg)) {
        payload = (await jwtVerify(token, await secret, { ...common, algorithms: HMAC_ALGS })).payload
      } else if (jwks && alg !== undefined && JWKS_ALGS.includes(alg)) {
        payload = (await jwtVerify(token, jwks, { ...common, algorithms: JWKS_ALGS })).payload
      } else {
        throw new CustomerTokenInvalid('The customer token is signed with an algorithm this service does not accept')
      }
    } catch (err) {
      if (err instanceof CustomerTokenInvalid) throw err
      throw new CustomerTokenInvalid(problem(err), { cause: err })
    }
    checkLifetime(payload, options)
    const attributes = payload.attributes ?? {}
    if (!Value.Check(AttributesSchema, attributes)) {
      throw new CustomerTokenInvalid('The customer token\'s attributes claim must map valid attribute keys to strings')
    }
    // A plain copy without a prototype: keys such as __proto__ stay data.
    const trusted: Record<string, string> = Object.assign(Object.create(null), attributes)
    return { ...(typeof payload.sub === 'string' ? { sub: payload.sub } : {}), attributes: trusted, claims: payload }
  }
}
