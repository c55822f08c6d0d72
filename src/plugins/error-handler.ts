import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Socket } from 'node:net'
import fp from 'fastify-plugin'
import { STATUS_CODES } from 'node:http'
import { ChatClosed, GatewayError, HeadersTooLarge, HumanCheckRequired, MalformedRequest, RequestTimedOut, RouteNotFound, StateUnavailable, ValidationFailed, type ProblemDetail } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { RefusalLog } from '../refusal-log.js'
import { socketClient } from './client-address.js'
import { requestPath } from './request-log.js'
import { SECURITY_HEADERS } from './security-headers.js'

const MAX_DETAILS = 20

interface ErrorBody { statusCode: number; error: string; code: string; message: string; details?: ProblemDetail[]; humanCheck?: string; nextOpen?: string }

function body (statusCode: number, code: string, message: string, details?: ProblemDetail[]): ErrorBody {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', code, message, ...(details ? { details } : {}) }
}

type AjvIssue = NonNullable<FastifyError['validation']>[number] & { parentSchema?: Record<string, unknown>; propertyName?: string }

/** A header's usual spelling: `idempotency-key` -> `Idempotency-Key`. */
const headerName = (name: string) => name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase())

/** `/ParticipantDetails/DisplayName` -> `ParticipantDetails.DisplayName`, naming the field itself. */
function pathOf (issue: AjvIssue, context: string | undefined): string {
  const params = issue.params as Record<string, unknown>
  const segments = issue.instancePath.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
  if (typeof params.additionalProperty === 'string') segments.push(params.additionalProperty)
  if (typeof params.missingProperty === 'string') segments.push(params.missingProperty)
  const propertyName = issue.propertyName ?? params.propertyName
  if (typeof propertyName === 'string') segments.push(propertyName)
  if (context === 'headers') return segments.map(headerName).join('.')
  return segments.join('.') || '(body)'
}

const article = (type: unknown) => /^[aeiou]/.test(String(type)) ? `an ${String(type)}` : `a ${String(type)}`

/**
 * Our wording for a validator's complaint, from its keyword and limits. A schema says what its
 * pattern or `contains` means with `patternMessage` / `containsMessage` (a regex is no message).
 */
function messageOf (issue: AjvIssue): string {
  const params = issue.params as Record<string, unknown>
  const own = issue.parentSchema
  switch (issue.keyword) {
    case 'additionalProperties': return 'is not an allowed field'
    case 'required': return 'is required'
    case 'type': return `must be ${article(params.type)}`
    case 'enum': return `must be one of: ${(params.allowedValues as unknown[]).join(', ')}`
    case 'minLength': return params.limit === 1 ? 'must not be empty' : `must be at least ${String(params.limit)} characters`
    case 'maxLength': return `must be at most ${String(params.limit)} characters`
    case 'minimum': return `must be at least ${String(params.limit)}`
    case 'maximum': return `must be at most ${String(params.limit)}`
    case 'minItems': return `must have at least ${String(params.limit)} item(s)`
    case 'maxItems': return `must have at most ${String(params.limit)} items`
    case 'maxProperties': return `must have at most ${String(params.limit)} entries`
    case 'uniqueItems': return 'must not repeat a value'
    case 'pattern': return typeof own?.patternMessage === 'string' ? own.patternMessage : 'is not in the expected format'
    case 'contains': return typeof own?.containsMessage === 'string' ? own.containsMessage : 'lacks a required value'
    case 'not': return typeof own?.notMessage === 'string' ? own.notMessage : 'is not allowed'
    default: return 'is not valid'
  }
}

/** Fastify's own 4xx errors, in our shape with our codes; their messages carry no user data. */
const FASTIFY_CODES: Record<string, [number, string, string]> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE', 'This content type is not accepted; send the body as JSON'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'INVALID_CONTENT_LENGTH', 'The Content-Length header does not match the body'],
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'BODY_TOO_LARGE', 'The request body is too large'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'INVALID_JSON', 'The request body is not valid JSON'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'INVALID_JSON', 'The request body is not valid JSON'],
  FST_ERR_CTP_EMPTY_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE', 'This content type is not accepted; send the body as JSON'],
  FST_ERR_CTP_INVALID_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE', 'This content type is not accepted; send the body as JSON'],
  FST_ERR_BAD_URL: [400, 'BAD_URL', 'The request URL is not valid'],
  FST_ERR_ASYNC_CONSTRAINT: [400, 'BAD_REQUEST', 'Bad Request']
}

/** The one renderer: every error answer's status, body and Retry-After, whoever raised it. */
export function toErrorBody (error: FastifyError | GatewayError | Error): { body: ErrorBody; retryAfter?: number } {
  if (error instanceof GatewayError) {
    const rendered = body(error.statusCode, error.code, error.message, error.details?.slice(0, MAX_DETAILS))
    // The widget needs to know which check to show, or when chat opens; nothing else about the refusal is told.
    if (error instanceof HumanCheckRequired && error.humanCheck !== undefined) rendered.humanCheck = error.humanCheck
    if (error instanceof ChatClosed && error.nextOpen !== undefined) rendered.nextOpen = error.nextOpen
    return { body: rendered, retryAfter: error.retryAfterSeconds }
  }
  const fe = error as FastifyError
  if (fe.validation) {
    // Unknown fields last, so a flood of them cannot hide the problems that matter; a propertyNames
    // failure is told by the failure of the name itself.
    const issues = (fe.validation as AjvIssue[]).filter((i) => i.keyword !== 'propertyNames')
      .sort((a, b) => Number(a.keyword === 'additionalProperties') - Number(b.keyword === 'additionalProperties'))
    const seen = new Set<string>()
    const details = issues.map((issue) => ({ path: pathOf(issue, fe.validationContext), message: messageOf(issue) }))
      .filter((d) => { const k = `${d.path}:${d.message}`; return !seen.has(k) && seen.add(k) })
      .slice(0, MAX_DETAILS)
    return toErrorBody(new ValidationFailed(details))
  }
  const known = fe.code ? FASTIFY_CODES[fe.code] : undefined
  if (known) return { body: body(known[0], known[1], known[2]) }
  // JSON.parse errors (and __proto__ / constructor poisoning) from the body parsers.
  if (error instanceof SyntaxError) return { body: body(400, 'INVALID_JSON', 'The request body is not valid JSON') }
  // The body stream broke (a bad chunk): the HTTP parser's own codes.
  if (typeof fe.code === 'string' && fe.code.startsWith('HPE_')) return toErrorBody(new MalformedRequest('The request is not valid HTTP'))
  const status = fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500 ? fe.statusCode : 500
  return { body: body(status, status === 500 ? 'INTERNAL' : 'BAD_REQUEST', status === 500 ? 'Something went wrong on our side' : STATUS_CODES[status] ?? 'Bad request') }
}

/**
 * Fastify's clientErrorHandler: HTTP that never became a request (framing errors, a bad chunk,
 * oversized headers, a client too slow). Answered in our shape with the headers every answer
 * carries, logged at info without a stack: a client can send these as fast as it likes.
 */
export function clientErrorHandler (this: { log: FastifyBaseLogger; refusalLog: RefusalLog; metrics: Metrics }, err: Error & { code?: string }, socket: Socket): void {
  // A reset connection has nobody to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const error = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
    ? new RequestTimedOut('The request did not arrive in time')
    : err.code === 'HPE_HEADER_OVERFLOW'
      ? new HeadersTooLarge('The request headers are too large')
      : new MalformedRequest('The request is not valid HTTP')
  this.metrics.requestsRefused.inc({ code: error.code.toLowerCase() })
  // Sampled per client like every refusal: a client can send these as fast as it can connect.
  if (this.refusalLog.admit(socketClient(socket).key, error.code, error.statusCode)) {
    this.log.info({ code: error.code, reason: err.code, remoteAddress: socketClient(socket).address }, 'malformed request refused')
  }
  if (socket.writable) {
    const payload = JSON.stringify(toErrorBody(error).body)
    socket.write(`HTTP/1.1 ${error.statusCode} ${STATUS_CODES[error.statusCode]}\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(payload)}\r\n` +
      Object.entries(SECURITY_HEADERS).map(([name, value]) => `${name}: ${value}\r\n`).join('') +
      `Connection: close\r\n\r\n${payload}`)
  }
  socket.destroy()
}

/**
 * Fastify's frameworkErrors: a URL it cannot decode, before any route or hook runs. Rendered like
 * every other error, with the headers every answer carries.
 */
export function frameworkErrorHandler (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const { body: payload } = toErrorBody(error)
  // No hook runs for these (no request line, no metrics hook): counted and sampled here.
  const { server } = request
  const client = socketClient(request.raw.socket)
  server.metrics.requestsRefused.inc({ code: payload.code.toLowerCase() })
  if (server.refusalLog.admit(client.key, payload.code, payload.statusCode)) {
    request.log.info({ code: payload.code, remoteAddress: client.address }, 'request refused before routing')
  }
  reply.headers(SECURITY_HEADERS).code(payload.statusCode).type('application/json; charset=utf-8').send(payload)
}

/** The one place where errors become HTTP answers (README, Errors). No stack, no upstream text. */
async function errorHandler (app: FastifyInstance) {
  app.setErrorHandler((error: FastifyError | GatewayError, request, reply) => {
    const { body: payload, retryAfter } = toErrorBody(error)
    if (error instanceof GatewayError && error.upstream) {
      // The upstream request id is what AWS support asks for; it goes to the log, never the caller.
      const level = error.statusCode === 502 ? 'error' : 'warn'
      request.log[level]({ code: error.code, upstream: error.upstream }, 'chat start failed upstream')
    } else if (error instanceof GatewayError) {
      // Our own refusals (overloaded, deadline): expected under load, worth a line, not a stack. A
      // closed queue is the business's hours, not trouble: its request line says enough. A Redis
      // outage (StateUnavailable) is logged once by the state guard, not once per request.
      if (payload.statusCode >= 500 && !(error instanceof ChatClosed) && !(error instanceof StateUnavailable)) request.log.warn({ code: error.code }, error.message)
    } else if (payload.statusCode >= 500) {
      request.log.error({ err: error }, 'unexpected error')
    }
    // A refusal of our own: its log line is sampled per client (see request-log.ts), never an upstream failure's.
    if (payload.statusCode < 500 && !(error instanceof GatewayError && error.upstream)) request.refusal = payload.code
    if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter))
    reply.code(payload.statusCode).type('application/json; charset=utf-8').send(payload)
  })

  app.setNotFoundHandler(async (request) => {
    throw new RouteNotFound(`No route for ${request.method} ${requestPath(request.url)}`)
  })
}

export default fp(errorHandler, { name: 'error-handler' })
