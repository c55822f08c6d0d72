import type { Config } from '../config.js'
import type { StartedChat } from '../connect/chat-starter.js'
import { PersistentChatDisabled, ResumeTokenRefused } from '../errors.js'

export interface PersistentChatAsk {
  RehydrationType: 'ENTIRE_PAST_SESSION' | 'FROM_SEGMENT'
  ResumeToken?: string
  SourceContactId?: string
}

export interface ResolvedPersistentChat {
  rehydrationType: 'ENTIRE_PAST_SESSION' | 'FROM_SEGMENT'
  sourceContactId: string
}

/** What the service believes about a caller beyond the body: SPEC section 5. */
export interface TrustPolicy {
  /** Trusted attributes from a verified customer token ({} without one); throws CustomerTokenInvalid. */
  customerAttributes (authorization: string | undefined): Promise<Record<string, string>>
  /** The source contact to rehydrate, from a verified resume token; throws when refused. */
  resolvePersistentChat (ask: PersistentChatAsk | undefined): Promise<ResolvedPersistentChat | undefined>
  /** A resume token for a chat just started, or undefined when persistent chat is off. */
  issueResumeToken (chat: StartedChat): Promise<string | undefined>
  close (): Promise<void>
}

// Placeholder until the signed tokens land: only PERSISTENT_CHAT=unverified and off behave.
export function createTrustPolicy (config: Config): TrustPolicy {
  return {
    async customerAttributes () { return {} },
    async resolvePersistentChat (ask) {
      if (ask === undefined) return undefined
      if (config.PERSISTENT_CHAT === 'off') throw new PersistentChatDisabled('Persistent chat is turned off on this service')
      if (config.PERSISTENT_CHAT === 'unverified' && ask.SourceContactId) {
        return { rehydrationType: ask.RehydrationType, sourceContactId: ask.SourceContactId }
      }
      throw new ResumeTokenRefused('A valid resume token is required to continue a chat')
    },
    async issueResumeToken () { return undefined },
    async close () {}
  }
}
