import type { FastifyServerOptions } from 'fastify'
import type { Config } from './config.js'

// Whatever identifies a customer or grants access to a chat is never written to a log.
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["idempotency-key"]',
  'res.headers["set-cookie"]',
  'ParticipantToken', '*.ParticipantToken', '*.*.ParticipantToken',
  'participantToken', '*.participantToken',
  'DisplayName', '*.DisplayName', '*.*.DisplayName',
  'displayName', '*.displayName',
  'Attributes', '*.Attributes', 'attributes', '*.attributes',
  'InitialMessage', '*.InitialMessage', 'Content', '*.Content',
  'resumeToken', '*.resumeToken', 'ResumeToken', '*.ResumeToken',
  'body', '*.body'
]

export function loggerOptions (config: Config, stream?: NodeJS.WritableStream): FastifyServerOptions['logger'] {
  return {
    level: config.LOG_LEVEL,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    ...(stream ? { stream } : {})
  }
}
