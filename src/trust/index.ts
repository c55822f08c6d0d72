import { randomBytes } from 'node:crypto'
import type { StartedChat } from '../connect/chat-starter.js'
import { CustomerTokenInvalid, PersistentChatDisabled, RelatedTokenRefused, ResumeTokenRefused } from '../errors.js'
import { createCustomerTokenVerifier, type CustomerClaims, type CustomerTokenOptions } from './customer-token.js'
import { RelatedTokens } from './related-token.js'
import { ResumeTokens } from './resume-token.js'
import { createSpentResumes, type Hold, type SpentResumes } from './spent-resumes.js'

export type { CustomerClaims }

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
  /** The chain began at a SourceContactId nobody verified; carried into the new token. */
  unverifiedSource: boolean
  /** Call when Connect accepted the continued chat: the resume token is spent. */
  spend (): Promise<void>
  /** Call when the start failed: the resume token stays usable. */
  release (): Promise<void>
}

/** The earlier contact a related chat continues from, held for this caller until spend() or release(). */
export interface ResolvedRelatedChat {
  contactId: string
  /** Call when Connect accepted the related chat: the token is spent. */
  spend (): Promise<void>
  /** Call when the start failed: the token stays usable. */
  release (): Promise<void>
}

/** The little of a pino logger this module needs (Fastify's app.log and request.log fit). */
export interface TrustLog {
  info? (obj: object, msg: string): void
  warn (obj: object, msg: string): void
  debug (obj: object, msg: string): void
}

/** What the service believes about a caller beyond the body: who they are, which chat they may continue. */
export interface TrustPolicy {
  /** The verified customer token's claims (undefined without one); throws CustomerTokenInvalid. */
  customer (authorization: string | undefined, log?: TrustLog): Promise<CustomerClaims | undefined>
  /**
   * The source contact to rehydrate, from a verified resume token that belongs to `customer` and was
   * not used before; held for this caller until spend() or release(). Throws when refused.
   */
  resolvePersistentChat (ask: PersistentChatAsk | undefined, customer?: CustomerClaims): Promise<ResolvedPersistentChat | undefined>
  /** A resume token for a chat just started (`resumed`: how it continued another), or undefined when persistent chat is off. */
  issueResumeToken (chat: StartedChat, resumed?: ResolvedPersistentChat, customer?: CustomerClaims): Promise<string | undefined>
  /**
   * The contact a RelatedContactToken names, when this widget hands out related chats, the token is
   * ours, for this widget and `customer`, and not used before. Throws RelatedTokenRefused.
   */
  resolveRelatedChat (token: string | undefined, customer?: CustomerClaims): Promise<ResolvedRelatedChat | undefined>
  /** A related-chat token for a chat just started, or undefined when the widget has related chats off. */
  issueRelatedToken (chat: StartedChat, customer?: CustomerClaims): string | undefined
  close (): Promise<void>
}

export interface TrustPolicyOptions {
  log?: TrustLog
  /** JWKS timings; the defaults suit production, tests shorten them. */
  jwks?: Pick<CustomerTokenOptions, 'jwksTimeoutMs' | 'jwksCooldownMs' | 'jwksCacheMaxAgeMs'>
  /** Clock for resume tokens, for tests. */
  now?: () => number
  /** Which resume and related tokens were used, for every replica (the state store's); in this process only without it. */
  spent?: SpentResumes
  /** Resume keys and the spent-token memory, shared by every widget and kept across reloads. */
  shared?: TrustShared
}

/** What one widget profile decides about trust; the environment's settings are the default profile. */
export interface TrustProfile {
  /** The widget a resume token is bound to; undefined for the default profile. */
  widget?: string
  persistentChat: 'verified' | 'unverified' | 'off'
  customerToken: { required: boolean; secret?: string; jwksUrl?: string; audience?: string; issuer?: string }
  /** Hand out related-chat tokens, and accept them. */
  relatedChats?: boolean
}

/** The deployment's trust settings: the same keys, lifetimes and memory for every widget profile. */
export interface TrustSettings {
  /** RESUME_TOKEN_SECRET's keys (the first signs); none: a random key of this process. */
  resumeSecrets: string[]
  resumeTokenTtlSeconds: number
  customerJwtMaxAgeSeconds: number
  /** Warns about a customer-token key that accepts tokens issued for anything (no audience, no issuer). */
  production: boolean
  /** The profile the environment describes. */
  defaultProfile: TrustProfile
}

export interface TrustShared {
  resumeTokens: ResumeTokens
  relatedTokens: RelatedTokens
  spent: SpentResumes
  /** RESUME_TOKEN_SECRET's keys (a random one when unset): they sign end tokens too, under a type of their own. */
  keys: Uint8Array[]
}

export function createTrustShared (settings: TrustSettings, options: TrustPolicyOptions = {}): TrustShared {
  const keys = resumeKeys(settings, options.log)
  return {
    keys,
    resumeTokens: new ResumeTokens({ keys, ttlSeconds: settings.resumeTokenTtlSeconds, now: options.now }),
    relatedTokens: new RelatedTokens(keys, settings.resumeTokenTtlSeconds, options.now),
    spent: options.spent ?? createSpentResumes()
  }
}

const BEARER = /^Bearer[ \t]+(.*)$/is

function resumeKeys ({ resumeSecrets, defaultProfile }: TrustSettings, log: TrustLog | undefined): Uint8Array[] {
  if (resumeSecrets.length > 0) return resumeSecrets.map((s) => new TextEncoder().encode(s))
  if (defaultProfile.persistentChat !== 'off') {
    log?.warn({ setting: 'RESUME_TOKEN_SECRET' },
      'RESUME_TOKEN_SECRET is not set: resume tokens are signed with a random key and will not survive a restart or work across replicas')
  }
  return [randomBytes(32)]
}

export function createTrustPolicy (settings: TrustSettings, options: TrustPolicyOptions = {}, profile: TrustProfile = settings.defaultProfile): TrustPolicy {
  const { resumeTokens, relatedTokens, spent } = options.shared ?? createTrustShared(settings, options)
  const { customerToken: keys, widget } = profile
  const verifyCustomerToken = createCustomerTokenVerifier({
    secret: keys.secret,
    jwksUrl: keys.jwksUrl,
    audience: keys.audience,
    issuer: keys.issuer,
    maxLifetimeSeconds: settings.customerJwtMaxAgeSeconds,
    ...options.jwks,
    onJwksUnavailable: (err) => options.log?.warn({ err: { name: (err as Error)?.name, message: (err as Error)?.message } },
      'CUSTOMER_JWKS_URL could not be read; using the keys fetched before, if any')
  })
  if (verifyCustomerToken && settings.production && !keys.audience && !keys.issuer) {
    options.log?.warn({ setting: 'CUSTOMER_JWT_AUDIENCE', ...(widget !== undefined ? { widget } : {}) },
      'neither CUSTOMER_JWT_AUDIENCE nor CUSTOMER_JWT_ISSUER is set: any token signed with this key is accepted, whatever it was issued for')
  }
  // Every token issued for the contact expires by then, so holding or remembering longer buys nothing.
  const spentMs = settings.resumeTokenTtlSeconds * 1000

  return {
    async customer (authorization, log) {
      // Other schemes (Basic from a staging proxy, say) are not ours to judge.
      const token = authorization === undefined ? undefined : BEARER.exec(authorization)?.[1]?.trim()
      // Without verification configured a token means nothing to us: anonymous chats stay anonymous.
      if (!verifyCustomerToken) return undefined
      if (token === undefined) {
        if (keys.required) throw new CustomerTokenInvalid('A customer token (Authorization: Bearer) is required')
        return undefined
      }
      const claims = await verifyCustomerToken(token)
      log?.debug({ customerSub: claims.sub }, 'customer token verified')
      return claims
    },

    async resolvePersistentChat (ask, customer) {
      if (ask === undefined) return undefined
      if (profile.persistentChat === 'off') throw new PersistentChatDisabled('Persistent chat is turned off on this service')
      const rehydrationType = ask.RehydrationType
      if (ask.ResumeToken !== undefined) {
        const claims = await resumeTokens.verify(ask.ResumeToken)
        // A chat continues only on the widget that started it: its flow, origins and trust.
        if (claims.widget !== widget) {
          throw new ResumeTokenRefused('This resume token belongs to another chat widget; start a new chat instead')
        }
        if (claims.unverifiedSource && profile.persistentChat === 'verified') {
          throw new ResumeTokenRefused('This resume token was issued without verifying the chat it continues; start a new chat instead')
        }
        if (claims.customer !== undefined && claims.customer !== customer?.sub) {
          throw new ResumeTokenRefused('This resume token belongs to a signed-in customer; sign in as them to continue the chat')
        }
        const hold = await spent.hold(claims.contactId, spentMs)
        if (!hold) throw new ResumeTokenRefused('This resume token has already been used; continue with the newest one or start a new chat')
        // Connect wants the session's first contact for ENTIRE_PAST_SESSION, the segment itself otherwise.
        const sourceContactId = rehydrationType === 'ENTIRE_PAST_SESSION' ? claims.initialContactId : claims.contactId
        return resolved(rehydrationType, sourceContactId, claims.initialContactId, claims.unverifiedSource === true, hold)
      }
      if (profile.persistentChat === 'unverified' && ask.SourceContactId !== undefined) {
        // Legacy clients: the first contact of the chain is unknown, so the source stands in for it.
        return resolved(rehydrationType, ask.SourceContactId, ask.SourceContactId, true)
      }
      throw new ResumeTokenRefused('A valid resume token is required to continue a chat')
    },

    async issueResumeToken (chat, resumed, customer) {
      if (profile.persistentChat === 'off') return undefined
      return resumeTokens.issue({
        contactId: chat.contactId,
        initialContactId: resumed?.initialContactId ?? chat.contactId,
        ...(customer?.sub !== undefined ? { customer: customer.sub } : {}),
        ...(widget !== undefined ? { widget } : {}),
        ...(resumed?.unverifiedSource ? { unverifiedSource: true } : {})
      })
    },

    async resolveRelatedChat (token, customer) {
      if (token === undefined) return undefined
      if (!profile.relatedChats) throw new RelatedTokenRefused('Related chats are turned off on this chat widget')
      const claims = await relatedTokens.verify(token)
      if (claims.widget !== widget) throw new RelatedTokenRefused('This related-chat token belongs to another chat widget')
      if (claims.customer !== undefined && claims.customer !== customer?.sub) {
        throw new RelatedTokenRefused('This related-chat token belongs to a signed-in customer; sign in as them to continue from that chat')
      }
      // Spent apart from resume tokens: continuing a chat and relating a new one to it are two uses.
      const hold = await spent.hold(`related:${claims.contactId}`, spentMs)
      if (!hold) throw new RelatedTokenRefused('This related-chat token has already been used')
      return {
        contactId: claims.contactId,
        spend: async () => { await hold.spend() },
        release: async () => { await hold.release() }
      }
    },

    issueRelatedToken (chat, customer) {
      if (!profile.relatedChats) return undefined
      return relatedTokens.issue({
        contactId: chat.contactId,
        ...(customer?.sub !== undefined ? { customer: customer.sub } : {}),
        ...(widget !== undefined ? { widget } : {})
      })
    },

    async close () {}
  }

  function resolved (rehydrationType: ResolvedPersistentChat['rehydrationType'], sourceContactId: string, initialContactId: string,
    unverifiedSource: boolean, hold?: Hold): ResolvedPersistentChat {
    return {
      rehydrationType,
      sourceContactId,
      initialContactId,
      unverifiedSource,
      spend: async () => { await hold?.spend() },
      release: async () => { await hold?.release() }
    }
  }
}
