import { Type } from 'typebox'

// Shapes and limits the whole service shares: the route validates bodies with them, the trust
// policy checks a customer token's attributes with them, and every error answer has ErrorReply's
// shape. Limits follow Amazon Connect's StartChatContact.

export const ATTRIBUTE_KEY = '^[A-Za-z0-9_-]+$'
export const MAX_ATTRIBUTE_BYTES = 32_768
export const DISPLAY_NAME_MAX = 256

/** Contact attributes: key rules and count; the total size is checked once trusted ones are merged. */
export const Attributes = Type.Record(Type.String(), Type.String(), {
  propertyNames: { pattern: ATTRIBUTE_KEY, patternMessage: 'is not a valid attribute key (letters, digits, _ and - only)', maxLength: 128 },
  maxProperties: 200,
  description: `contact attributes; keys limited to ALLOWED_ATTRIBUTES; at most ${MAX_ATTRIBUTE_BYTES} UTF-8 bytes in all`
})

export const ErrorReply = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  code: Type.String(),
  message: Type.String(),
  details: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
  humanCheck: Type.Optional(Type.String({ description: 'with HUMAN_CHECK_REQUIRED: the check to pass (pow, turnstile, hcaptcha, recaptcha)' })),
  nextOpen: Type.Optional(Type.String({ description: 'CHAT_CLOSED: when the queue opens again (ISO 8601)' }))
})
