import { randomBytes } from 'node:crypto'
import type { Config } from '../config.js'
import type { StartedChat } from '../connect/chat-starter.js'
import { CustomerTokenInvalid, PersistentChatDisabled, ResumeTokenRefused } from '../errors.js'
import { createCustomerTokenVerifier, type CustomerTokenOptions } from './customer-token.js'
import { ResumeTokens } from './resume-token.js'

export interface PersistentChatAsk {
  RehydrationType: 'ENTIRE_PAST_SESSION' | 'FROM_SEGMENT'
  ResumeToken?: string
  SourceContactId?: string
}

export interface ResolvedPersistentChat {
  rehydrationType: 'ENTIRE_PAST_SESSION' | 'FROM_SEGMENT'
  sourceContactId: string
  /** First contact of the chain, carried into the new chat's resume token. */
  initialContactId: string
}

/** The little of a pino logger this module needs (Fastify's app.log and request.log fit). */
export interface TrustLog {
  warn (obj: object, msg: string): void
  debug (obj: object, msg: string): void
}

/** What the service believes about a caller beyond the body: SPEC section 5. */
export interface TrustPolicy {
  /** Trusted attributes from a verified customer token ({} without one); throws CustomerTokenInvalid. */
  customerAttributes (authorization: string | undefined, log?: TrustLog): Promise<Record<string, string>>
  /** The source contact to rehydrate, from a verified resume token; throws when refused. */
  resolvePersistentChat (ask: PersistentChatAsk | undefined): Promise<ResolvedPersistentChat | undefined>
  /** A resume token for a chat just started (`resumed`: how it continued another), or undefined when persistent chat is off. */
  issueResumeToken (chat: StartedChat, resumed?: ResolvedPersistentChat): Promise<string | undefined>
  close (): Promise<void>
}

export interface TrustPolicyOptions {
  log?: TrustLog
  /** JWKS timings; the defaults suit production, tests shorten them. */
  jwks?: Pick<CustomerTokenOptions, 'jwksTimeoutMs' | 'jwksCooldownMs' | 'jwksCacheMaxAgeMs'>
  /** Clock for resume tokens, for tests. */
  now?: () => number
}

const BEARER = /^Bearer[ \t]+(.*)$/is

function resumeKeys (config: Config, log: TrustLog | undefined): Uint8Array[] {
  if (config.resumeSecrets.length > 0) return config.resumeSecrets.map((s) => new TextEncoder().encode(s))
  if (config.PERSISTENT_CHAT !== 'off') {
    log?.warn({ setting: 'RESUME_TOKEN_SECRET' },
      'RESUME_TOKEN_SECRET is not set: resume tokens are signed with a random key and will not survive a restart or work across replicas')
  }
  return [randomBytes(32)]
}

export function createTrustPolicy (config: Config, options: TrustPolicyOptions = {}): TrustPolicy {
  const resumeTokens = new ResumeTokens({ keys: resumeKeys(config, options.log), ttlSeconds: config.resumeTokenTtlSeconds, now: options.now })
  const verifyCustomerToken = createCustomerTokenVerifier({
    secret: config.CUSTOMER_JWT_SECRET,
    jwksUrl: config.CUSTOMER_JWKS_URL,
    audience: config.CUSTOMER_JWT_AUDIENCE,
    issuer: config.CUSTOMER_JWT_ISSUER,
    ...options.jwks,
    onJwksUnavailable: (err) => options.log?.warn({ err: { name: (err as Error)?.name, message: (err as Error)?.message } },
      'CUSTOMER_JWKS_URL could not be read; using the keys fetched before, if any')
  })

  return {
    async customerAttributes (authorization, log) {
      // Other schemes (Basic from a staging proxy, say) are not ours to judge.
      const token = authorization === undefined ? undefined : BEARER.exec(authorization)?.[1]?.trim()
      // Without verification configured a token means nothing to us: anonymous chats stay anonymous.
      if (!verifyCustomerToken) return {}
      if (token === undefined) {
        if (config.REQUIRE_CUSTOMER_TOKEN) throw new CustomerTokenInvalid('A customer token (Authorization: Bearer) is required')
        return {}
      }
      const claims = await verifyCustomerToken(token)
      log?.debug({ customerSub: claims.sub }, 'customer token verified')
      return claims.attributes
    },

    async resolvePersistentChat (ask) {
      if (ask === undefined) return undefined
      if (config.PERSISTENT_CHAT === 'off') throw new PersistentChatDisabled('Persistent chat is turned off on this service')
      const rehydrationType = ask.RehydrationType
      if (ask.ResumeToken !== undefined) {
        const { contactId, initialContactId } = await resumeTokens.verify(ask.ResumeToken)
        // Connect wants the session's first contact for ENTIRE_PAST_SESSION, the segment itself otherwise.
        const sourceContactId = rehydrationType === 'ENTIRE_PAST_SESSION' ? initialContactId : contactId
        return { rehydrationType, sourceContactId, initialContactId }
      }
      if (config.PERSISTENT_CHAT === 'unverified' && ask.SourceContactId !== undefined) {
        // Legacy clients: the first contact of the chain is unknown, so the source stands in for it.
        return { rehydrationType, sourceContactId: ask.SourceContactId, initialContactId: ask.SourceContactId }
      }
      throw new ResumeTokenRefused('A valid resume token is required to continue a chat')
    },

    async issueResumeToken (chat, resumed) {
      if (config.PERSISTENT_CHAT === 'off') return undefined
      return resumeTokens.issue({ contactId: chat.contactId, initialContactId: resumed?.initialContactId ?? chat.contactId })
    },

    async close () {}
  }
}
