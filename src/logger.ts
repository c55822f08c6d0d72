import type { FastifyServerOptions } from 'fastify'
import { createRequire } from 'node:module'
import pino from 'pino'
import { compileRedactor } from './redact.js'

// Whatever identifies a customer or grants access to a chat is never written to a log.
// Paths are the second line of defence: request lines carry no headers or bodies
// (plugins/request-log.ts) and errors are serialized by allowlist (below). Every name at the top
// level, the known nested shapes exactly, and a wildcard only for the few worst leaks.
const SECRET_KEYS = [
  'authorization', 'Authorization', 'cookie', 'Cookie', 'headers', 'ParticipantToken', 'participantToken',
  'ParticipantDetails', 'DisplayName', 'displayName', 'Attributes', 'attributes', 'InitialMessage',
  'initialMessage', 'Content', 'content', 'ResumeToken', 'resumeToken', 'EndToken', 'endToken', 'body', 'payload',
  // SDK errors and commands carry the raw HTTP response and the command input.
  '$response', 'input'
]
const HEADERS = ['authorization', 'Authorization', 'cookie', 'Cookie', '["set-cookie"]', '["idempotency-key"]', '["human-check"]']
export const REDACT_PATHS = [
  ...SECRET_KEYS,
  ...['req.headers', 'res.headers', 'request.headers', 'reply.headers'].flatMap((h) => HEADERS.map((k) => k.startsWith('[') ? `${h}${k}` : `${h}.${k}`)),
  'data.startChatResult.ParticipantToken', 'startChatResult.ParticipantToken', 'data.resumeToken', 'data.endToken',
  '*.ParticipantToken', '*.DisplayName', '*.Attributes', '*.authorization', '*.cookie'
]

/**
 * Compiled once (see redact.ts) and applied to each line's own fields. Child-logger bindings are not
 * passed through it: they are ours (the request id, the widget id), never what a client sent.
 */
export const redactLine = compileRedactor(REDACT_PATHS, '[redacted]')

interface ErrorLike {
  name?: string
  message?: string
  stack?: string
  code?: unknown
  statusCode?: unknown
  upstream?: unknown
  cause?: unknown
  $metadata?: { requestId?: string; httpStatusCode?: number; attempts?: number }
  $fault?: string
}

const isErrorLike = (value: unknown): value is ErrorLike =>
  typeof value === 'object' && value !== null && typeof (value as ErrorLike).message === 'string'

export interface SerializedError { type: string; message: string; stack: string; [key: string]: unknown }

/**
 * Errors are logged by allowlist, not by pino's default of every enumerable field plus every cause's
 * message. An AWS service error's message is Connect's text, which can quote the input it refused
 * (a display name, an attribute): for those only the name, ids and status are kept. Errors that
 * never reached Connect (DNS, refused connection, credentials) keep their message: it is the SDK's.
 */
export function serializeError (err: unknown, depth = 0): SerializedError {
  if (!isErrorLike(err)) return { type: typeof err, message: String(err), stack: '' }
  const type = err.name ?? 'Error'
  const stack = err.stack ?? ''
  // Only Connect's own answers (a status, a fault): a network or credentials error keeps its text.
  const fromAws = err.$metadata?.httpStatusCode !== undefined || err.$fault !== undefined
  const out: SerializedError = fromAws
    ? {
        type,
        message: `${type} (the upstream's message is not logged)`,
        // The first stack line repeats the message.
        stack: [type, ...stack.split('\n').slice(1)].join('\n'),
        requestId: err.$metadata?.requestId,
        httpStatusCode: err.$metadata?.httpStatusCode,
        attempts: err.$metadata?.attempts,
        fault: err.$fault
      }
    : { type, message: err.message ?? '', stack }
  if (typeof err.code === 'string') out.code = err.code
  if (typeof err.statusCode === 'number') out.statusCode = err.statusCode
  if (typeof err.upstream === 'object' && err.upstream !== null) out.upstream = err.upstream
  if (err.cause !== undefined && depth < 3) out.cause = serializeError(err.cause, depth + 1)
  return out
}

export interface LoggerSettings {
  level: pino.LevelWithSilent
  /** Pretty lines allowed (outside production); they still need a terminal and pino-pretty. */
  pretty: boolean
}

/** pino-pretty is a dev dependency: only on a terminal, outside production, and when installed. */
function prettyTransport (pretty: boolean) {
  if (!pretty || !process.stdout.isTTY) return undefined
  try {
    createRequire(import.meta.url).resolve('pino-pretty')
  } catch {
    return undefined
  }
  return { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } }
}

export function loggerOptions ({ level, pretty }: LoggerSettings, stream?: NodeJS.WritableStream): FastifyServerOptions['logger'] {
  const transport = stream ? undefined : prettyTransport(pretty)
  return {
    level,
    formatters: { log: redactLine },
    serializers: { err: (err: unknown) => serializeError(err), error: (err: unknown) => serializeError(err) },
    // Synchronous stdout: pino's default buffers, and close-with-grace's process.exit() then loses
    // the last lines (the fatal one or "shut down cleanly"). A few chat starts per second cost nothing.
    ...(stream ? { stream } : transport ? { transport } : { stream: pino.destination({ dest: 1, sync: true }) })
  }
}
