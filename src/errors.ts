// The small set of named failures the service can answer with. They are mapped to HTTP in exactly
// one place (src/plugins/error-handler.ts); nothing here knows about Fastify.

export interface ProblemDetail { path: string; message: string }

/**
 * What we learned from Connect about a failure: for the log line, never for the response body.
 * `message` only for failures that are not Connect's answer (region, endpoint, credentials, DNS):
 * the SDK's own text says what to fix, and it quotes nothing a customer sent.
 */
export interface UpstreamInfo { errorName: string; requestId?: string; httpStatus?: number; attempts?: number; message?: string }

/** An Error without a stack trace, for refusals that are expected (see GatewayError). */
export function errorWithoutStack (message: string): Error {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  const error = new Error(message)
  Error.stackTraceLimit = limit
  return error
}

export abstract class GatewayError extends Error {
  abstract readonly statusCode: number
  abstract readonly code: string
  retryAfterSeconds?: number
  details?: ProblemDetail[]
  upstream?: UpstreamInfo

  constructor (message: string, options: { retryAfterSeconds?: number; upstream?: UpstreamInfo; cause?: unknown } = {}) {
    // These are answers, not bugs: no stack is ever logged for them, and capturing one cost more
    // than the rest of refusing a request (an unlisted origin, a rate limit) in the benchmark.
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    super(message, { cause: options.cause })
    Error.stackTraceLimit = limit
    this.name = new.target.name
    this.retryAfterSeconds = options.retryAfterSeconds
    this.upstream = options.upstream
  }
}

export class ValidationFailed extends GatewayError {
  readonly statusCode = 400
  readonly code = 'VALIDATION_FAILED'
  constructor (details: ProblemDetail[], message = 'The request is not valid') {
    super(message)
    this.details = details
  }
}

/** HTTP the server could not parse (framing, a bad chunk): refused before any route sees it. */
export class MalformedRequest extends GatewayError {
  readonly statusCode = 400
  readonly code = 'MALFORMED_REQUEST'
}

/** Headers or body did not arrive within REQUEST_TIMEOUT_MS. */
export class RequestTimedOut extends GatewayError {
  readonly statusCode = 408
  readonly code = 'REQUEST_TIMEOUT'
}

export class HeadersTooLarge extends GatewayError {
  readonly statusCode = 431
  readonly code = 'HEADERS_TOO_LARGE'
}

export class RouteNotFound extends GatewayError {
  readonly statusCode = 404
  readonly code = 'NOT_FOUND'
}

/** POST /chat/start/:widget for an id no profile has. */
export class WidgetNotFound extends GatewayError {
  readonly statusCode = 404
  readonly code = 'WIDGET_NOT_FOUND'
}

/** GET /chat/availability for a profile without a queue (no CONNECT_QUEUE_ID, no `queueId`). */
export class AvailabilityNotConfigured extends GatewayError {
  readonly statusCode = 404
  readonly code = 'AVAILABILITY_NOT_CONFIGURED'
}

export class OriginNotAllowed extends GatewayError {
  readonly statusCode = 403
  readonly code = 'ORIGIN_NOT_ALLOWED'
}

export class ResumeTokenRefused extends GatewayError {
  readonly statusCode = 403
  readonly code = 'RESUME_TOKEN_REFUSED'
}

export class PersistentChatDisabled extends GatewayError {
  readonly statusCode = 403
  readonly code = 'PERSISTENT_CHAT_DISABLED'
}

export class CustomerTokenInvalid extends GatewayError {
  readonly statusCode = 401
  readonly code = 'CUSTOMER_TOKEN_INVALID'
}

export class SourceContactRefused extends GatewayError {
  readonly statusCode = 409
  readonly code = 'SOURCE_CONTACT_REFUSED'
}

export class RateLimited extends GatewayError {
  readonly statusCode = 429
  readonly code = 'RATE_LIMITED'
}

/** Connect answered TooManyRequests/Throttling and our retries ran out. */
export class UpstreamThrottled extends GatewayError {
  readonly statusCode = 503
  readonly code = 'UPSTREAM_THROTTLED'
}

/** Connect's concurrent active chat quota is reached (LimitExceededException); never retried. */
export class ChatQuotaReached extends GatewayError {
  readonly statusCode = 503
  readonly code = 'CHAT_QUOTA_REACHED'
}

/** We refused to call Connect to protect it or ourselves (concurrency cap, pacing queue full). */
export class Overloaded extends GatewayError {
  readonly statusCode = 503
  readonly code = 'OVERLOADED'
}

/**
 * Shared state that a safety rule depends on (a spent resume token, a used human-check proof) could not be confirmed: Redis
 * is configured but down or too slow. Refused rather than decided by one replica alone.
 */
export class StateUnavailable extends GatewayError {
  readonly statusCode = 503
  readonly code = 'STATE_UNAVAILABLE'
}

/** This replica cannot serve yet (its AWS credentials have not resolved): readiness only. */
export class NotReady extends GatewayError {
  readonly statusCode = 503
  readonly code = 'NOT_READY'
}

/** Connect rejected our own configuration: instance, flow, credentials, parameters we built. */
export class UpstreamMisconfigured extends GatewayError {
  readonly statusCode = 502
  readonly code = 'UPSTREAM_MISCONFIGURED'
}

/** Connect failed (5xx, network, unreadable answer) and retries ran out. */
export class UpstreamFailed extends GatewayError {
  readonly statusCode = 502
  readonly code = 'UPSTREAM_FAILED'
}

/** REFUSE_WHEN_CLOSED: the queue is closed, so no chat is opened that nobody would answer; Connect is not called. */
export class ChatClosed extends GatewayError {
  readonly statusCode = 503
  readonly code = 'CHAT_CLOSED'
  /** When it opens again (ISO 8601), when known: the widget can say "back at 09:00". */
  readonly nextOpen?: string
  constructor (message: string, options: { nextOpen?: string; retryAfterSeconds: number }) {
    super(message, { retryAfterSeconds: options.retryAfterSeconds })
    if (options.nextOpen !== undefined) this.nextOpen = options.nextOpen
  }
}

/** The caller closed the connection before the answer: nobody reads it; counted, never logged as a failure. */
export class CallerLeft extends GatewayError {
  readonly statusCode = 499
  readonly code = 'CALLER_LEFT'
}

export class DeadlineExceeded extends GatewayError {
  readonly statusCode = 504
  readonly code = 'DEADLINE_EXCEEDED'
}

/** The caller already holds MAX_OPEN_CHATS_PER_CALLER live chats. */
export class TooManyOpenChats extends GatewayError {
  readonly statusCode = 429
  readonly code = 'TOO_MANY_OPEN_CHATS'
}

/**
 * Anonymous callers together hold their share of the instance's chats (or every chat is taken): the
 * rest is kept for verified customers.
 */
export class ChatCapacityReserved extends GatewayError {
  readonly statusCode = 503
  readonly code = 'CHAT_CAPACITY_RESERVED'
}

/** An end token that is forged, expired, or for another widget. */
export class EndTokenRefused extends GatewayError {
  readonly statusCode = 403
  readonly code = 'END_TOKEN_REFUSED'
}

/** An anonymous start without a valid, unused human-check proof while one is asked for. */
export class HumanCheckRequired extends GatewayError {
  readonly statusCode = 403
  readonly code = 'HUMAN_CHECK_REQUIRED'
  /** Which check the caller must pass: pow, turnstile, hcaptcha or recaptcha. */
  humanCheck?: string
}

/** The human-check provider did not answer in time: the start is refused, not waved through. */
export class HumanCheckUnavailable extends GatewayError {
  readonly statusCode = 503
  readonly code = 'HUMAN_CHECK_UNAVAILABLE'
}

/** A RelatedContactToken that is forged, expired, spent, for another widget or customer, or on a widget without related chats. */
export class RelatedTokenRefused extends GatewayError {
  readonly statusCode = 403
  readonly code = 'RELATED_TOKEN_REFUSED'
}
