import type { FastifyBaseLogger, FastifyError, FastifyInstance } from 'fastify'
import type { Socket } from 'node:net'
import fp from 'fastify-plugin'
import { STATUS_CODES } from 'node:http'
import { GatewayError, HeadersTooLarge, MalformedRequest, RequestTimedOut, type ProblemDetail } from '../errors.js'
import { requestPath } from './request-log.js'
import { SECURITY_HEADERS } from './security-headers.js'

const MAX_DETAILS = 20

interface ErrorBody { statusCode: number; error: string; code: string; message: string; details?: ProblemDetail[] }

function body (statusCode: number, code: string, message: string, details?: ProblemDetail[]): ErrorBody {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', code, message, ...(details ? { details } : {}) }
}

type AjvIssue = NonNullable<FastifyError['validation']>[number]

/** `/ParticipantDetails/DisplayName` -> `ParticipantDetails.DisplayName`, naming the field itself. */
function pathOf (issue: AjvIssue, context: string | undefined): string {
  const params = issue.params as Record<string, unknown>
  const segments = issue.instancePath.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
  if (typeof params.additionalProperty === 'string') segments.push(params.additionalProperty)
  if (typeof params.missingProperty === 'string') segments.push(params.missingProperty)
  const propertyName = (issue as { propertyName?: string }).propertyName ?? params.propertyName
  if (typeof propertyName === 'string') segments.push(propertyName)
  if (context === 'headers') return segments.map((s) => s.replace(/^idempotency-key$/, 'Idempotency-Key')).join('.')
  return segments.join('.') || '(body)'
}

function messageOf (issue: AjvIssue): string {
  const params = issue.params as Record<string, unknown>
  if (issue.keyword === 'additionalProperties') return 'is not an allowed field'
  if (issue.keyword === 'required') return 'is required'
  if (issue.keyword === 'enum' && Array.isArray(params.allowedValues)) return `must be one of: ${params.allowedValues.join(', ')}`
  if (issue.keyword === 'pattern' && issue.instancePath.endsWith('/DisplayName')) return 'must not contain control characters'
  if (issue.keyword === 'pattern' && issue.instancePath.endsWith('/idempotency-key')) return 'must be 16 to 64 characters of A-Z, a-z, 0-9, _ and - (a UUID fits)'
  if (issue.keyword === 'propertyNames' || (issue as { propertyName?: string }).propertyName !== undefined) {
    return 'is not a valid attribute key (letters, digits, _ and - only)'
  }
  if (issue.keyword === 'contains') return 'must contain text/plain'
  return issue.message ?? 'is not valid'
}

/** Fastify's own 4xx errors, in our shape with our codes; their messages carry no user data. */
const FASTIFY_CODES: Record<string, [number, string, string]> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json (text/plain and form-urlencoded JSON are accepted too)'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'INVALID_CONTENT_LENGTH', 'The Content-Length header does not match the body'],
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'BODY_TOO_LARGE', 'The request body is too large'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'INVALID_JSON', 'The request body is empty'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'INVALID_JSON', 'The request body is not valid JSON'],
  FST_ERR_CTP_EMPTY_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE', 'The Content-Type header is empty'],
  FST_ERR_CTP_INVALID_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE', 'The Content-Type header is not valid']
}

export function toErrorBody (error: FastifyError | GatewayError | Error): { body: ErrorBody; retryAfter?: number } {
  if (error instanceof GatewayError) {
    return { body: body(error.statusCode, error.code, error.message, error.details?.slice(0, MAX_DETAILS)), retryAfter: error.retryAfterSeconds }
  }
  const fe = error as FastifyError
  if (fe.validation) {
    // Unknown fields last, so a flood of them cannot hide the problems that matter.
    const issues = [...fe.validation].sort((a, b) => Number(a.keyword === 'additionalProperties') - Number(b.keyword === 'additionalProperties'))
    const seen = new Set<string>()
    const details = issues.map((issue) => ({ path: pathOf(issue, fe.validationContext), message: messageOf(issue) }))
      .filter((d) => { const k = `${d.path}:${d.message}`; return !seen.has(k) && seen.add(k) })
      .slice(0, MAX_DETAILS)
    return { body: body(400, 'VALIDATION_FAILED', 'The request is not valid', details) }
  }
  const known = fe.code ? FASTIFY_CODES[fe.code] : undefined
  if (known) return { body: body(known[0], known[1], known[2]) }
  // JSON.parse errors (and __proto__ / constructor poisoning) from the body parsers.
  if (error instanceof SyntaxError || fe.statusCode === 400) return { body: body(400, 'INVALID_JSON', 'The request body is not valid JSON') }
  const status = fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500 ? fe.statusCode : 500
  return { body: body(status, status === 500 ? 'INTERNAL' : 'BAD_REQUEST', status === 500 ? 'Something went wrong on our side' : STATUS_CODES[status] ?? 'Bad request') }
}

/**
 * Fastify's clientErrorHandler: HTTP that never became a request (framing errors, a bad chunk,
 * oversized headers, a client too slow). Answered in our shape with the headers every answer
 * carries, logged at info without a stack: a client can send these as fast as it likes.
 */
export function clientErrorHandler (this: { log: FastifyBaseLogger }, err: Error & { code?: string }, socket: Socket): void {
  // A reset connection has nobody to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const error = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
    ? new RequestTimedOut('The request did not arrive in time')
    : err.code === 'HPE_HEADER_OVERFLOW'
      ? new HeadersTooLarge('The request headers are too large')
      : new MalformedRequest('The request is not valid HTTP')
  this.log.info({ code: error.code, reason: err.code }, 'malformed request refused')
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

/** The one place where errors become HTTP answers (README, Errors). No stack, no upstream text. */
async function errorHandler (app: FastifyInstance) {
  app.setErrorHandler((error: FastifyError | GatewayError, request, reply) => {
    const { body: payload, retryAfter } = toErrorBody(error)
    if (error instanceof GatewayError && error.upstream) {
      // The upstream request id is what AWS support asks for; it goes to the log, never the caller.
      const level = error.statusCode === 502 ? 'error' : 'warn'
      request.log[level]({ code: error.code, upstream: error.upstream }, 'chat start failed upstream')
    } else if (error instanceof GatewayError) {
      // Our own refusals (overloaded, deadline): expected under load, worth a line, not a stack.
      if (payload.statusCode >= 500) request.log.warn({ code: error.code }, error.message)
    } else if (payload.statusCode >= 500) {
      request.log.error({ err: error }, 'unexpected error')
    }
    if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter))
    reply.code(payload.statusCode).type('application/json; charset=utf-8').send(payload)
  })

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send(body(404, 'NOT_FOUND', `No route for ${request.method} ${requestPath(request.url)}`))
  })
}

export default fp(errorHandler, { name: 'error-handler' })
