import { Type, type Static } from 'typebox'
import { Attributes, ErrorReply } from '../shapes.js'

// Field names and limits follow Amazon Connect's StartChatContact, so the sample clients' bodies
// pass unchanged. Anything not listed is refused (additionalProperties: false), never dropped.

/** Control characters (C0, DEL, C1) and the line/paragraph separators that break display names. */
const NO_CONTROL = '^[^\\u0000-\\u001F\\u007F-\\u009F\\u2028\\u2029]*$'
export const CONTENT_TYPES = [
  'text/plain', 'text/markdown', 'application/json',
  'application/vnd.amazonaws.connect.message.interactive',
  'application/vnd.amazonaws.connect.message.interactive.response'
] as const

/** A field Connect knows but only the gateway sets: named in the schema so a browser sending it is told why. */
const Refused = (source: string) =>
  Type.Optional(Type.Never({ description: `never accepted from a client: ${source}`, notMessage: `is never accepted from a client: ${source}` }))

const Ignored = (description: string) =>
  Type.Optional(Type.String({ maxLength: 500, description: `${description}; accepted from sample clients and ignored` }))

export const ChatStartBody = Type.Object({
  ParticipantDetails: Type.Object({
    // Trimmed and re-measured (1..256) after validation; the bound here only caps the work.
    DisplayName: Type.String({
      minLength: 1, maxLength: 1024, pattern: NO_CONTROL, patternMessage: 'must not contain control characters',
      description: 'customer name shown to the agent, 1..256 characters after trimming'
    })
  }, { additionalProperties: false }),
  Attributes: Type.Optional(Attributes),
  InitialMessage: Type.Optional(Type.Object({
    ContentType: Type.Enum(['text/plain', 'text/markdown']),
    Content: Type.String({ minLength: 1, maxLength: 16_384 })
  }, { additionalProperties: false })),
  SupportedMessagingContentTypes: Type.Optional(Type.Array(
    Type.Enum([...CONTENT_TYPES]),
    { minItems: 1, maxItems: CONTENT_TYPES.length, uniqueItems: true, contains: { const: 'text/plain' }, containsMessage: 'must contain text/plain', description: 'must contain text/plain' }
  )),
  ChatDurationInMinutes: Type.Optional(Type.Integer({ minimum: 60, maximum: 10_080 })),
  PersistentChat: Type.Optional(Type.Object({
    RehydrationType: Type.Enum(['ENTIRE_PAST_SESSION', 'FROM_SEGMENT']),
    ResumeToken: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: 'data.resumeToken of the chat to continue' })),
    SourceContactId: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'only honoured with PERSISTENT_CHAT=unverified' }))
  }, { additionalProperties: false })),
  ParticipantConfiguration: Type.Optional(Type.Object({
    ResponseMode: Type.Optional(Type.Enum(['COMPLETE', 'INCREMENTAL'], { description: 'COMPLETE always; INCREMENTAL only where the widget profile sets responseMode INCREMENTAL' }))
  }, { additionalProperties: false })),
  RelatedContactToken: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: 'data.relatedToken of an earlier chat: the new chat starts as a contact related to it' })),
  SegmentAttributes: Refused('the widget profile sets segment attributes'),
  CustomerId: Refused('it comes from a verified customer token'),
  RelatedContactId: Refused('send RelatedContactToken'),
  DisconnectOnCustomerExit: Refused('the widget profile sets it'),
  InstanceId: Ignored('instance id'),
  ConnectInstanceId: Ignored('instance id'),
  ContactFlowId: Ignored('contact flow id'),
  Username: Ignored('user name')
}, { additionalProperties: false })

export type ChatStartBody = Static<typeof ChatStartBody>

export const ChatStartHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({
    pattern: '^[A-Za-z0-9_-]{16,64}$',
    patternMessage: 'must be 16 to 64 characters of A-Z, a-z, 0-9, _ and - (a UUID fits)',
    description: '16..64 of A-Z a-z 0-9 _ - (a UUID fits): the same key from the same caller never opens two chats'
  })),
  'human-check': Type.Optional(Type.String({
    maxLength: 8192,
    description: 'the proof of a human check when one is asked (HUMAN_CHECK_REQUIRED): an ALTCHA payload, or the provider\'s token'
  })),
  authorization: Type.Optional(Type.String()),
  origin: Type.Optional(Type.String())
})

export type ChatStartHeaders = Static<typeof ChatStartHeaders>

export const WidgetParams = Type.Object({
  widget: Type.String({ pattern: '^[a-z0-9-]{1,32}$', patternMessage: 'must be 1 to 32 of a-z, 0-9 and -', description: 'id of a widget profile from WIDGETS_FILE' })
})

export const ChatStartReply = Type.Object({
  data: Type.Object({
    startChatResult: Type.Object({
      ContactId: Type.String(),
      ParticipantId: Type.String(),
      ParticipantToken: Type.String(),
      ContinuedFromContactId: Type.Optional(Type.String())
    }),
    featurePermissions: Type.Object({ MESSAGING_MARKDOWN: Type.Boolean(), ATTACHMENTS: Type.Boolean() }),
    resumeToken: Type.Optional(Type.String({ description: 'send back as PersistentChat.ResumeToken to continue this chat later' })),
    relatedToken: Type.Optional(Type.String({ description: 'on widgets with related chats: send back as RelatedContactToken to start a new chat related to this one' })),
    endToken: Type.String({ description: 'send to POST /chat/end (as {"EndToken": …}) to end this chat, e.g. on pagehide with navigator.sendBeacon' })
  })
})

export { ErrorReply }
