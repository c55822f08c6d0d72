import {
  ChatQuotaReached, DeadlineExceeded, GatewayError, SourceContactRefused, UpstreamFailed,
  UpstreamMisconfigured, UpstreamThrottled, type UpstreamInfo
} from '../errors.js'

interface SdkErrorLike {
  name?: string
  message?: unknown
  $fault?: string
  $metadata?: { requestId?: string; httpStatusCode?: number; attempts?: number }
  $response?: { headers?: Record<string, string | undefined> }
}

// Connect sends no Retry-After on its own; these are what a widget should wait before trying again.
export const DEFAULT_RETRY_AFTER = { throttled: 2, quota: 30 } as const
const MAX_RETRY_AFTER = 300
const MAX_MESSAGE = 300

/** Connect's API rate throttling (not the chat quota): retried, paced, answered 503 UPSTREAM_THROTTLED. */
export const THROTTLED = new Set(['ThrottlingException', 'TooManyRequestsException'])
const MISCONFIGURED = new Set([
  'ResourceNotFoundException', 'AccessDeniedException', 'InvalidParameterException', 'InvalidRequestException',
  'UnrecognizedClientException', 'InvalidSignatureException', 'MissingAuthenticationTokenException',
  'ExpiredTokenException', 'CredentialsProviderError'
])
// Connect refuses a rehydration source that is still active or unknown with these.
const SOURCE_REFUSED = new Set(['InvalidRequestException', 'ResourceNotFoundException'])

function retryAfterHint (err: SdkErrorLike): number | undefined {
  const raw = err.$response?.headers?.['retry-after']
  if (raw === undefined) return undefined
  const seconds = /^\d+$/.test(raw.trim()) ? Number(raw) : Math.ceil((Date.parse(raw) - Date.now()) / 1000)
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, MAX_RETRY_AFTER) : undefined
}

/**
 * Turns whatever the SDK threw into one of our named errors. The upstream details travel in
 * `upstream` for the log line; the message is ours and safe to show.
 */
export function mapConnectError (raw: unknown, context: { deadlineExpired: boolean; persistentChat: boolean }): GatewayError {
  if (raw instanceof GatewayError) return raw
  const err = (typeof raw === 'object' && raw !== null ? raw : {}) as SdkErrorLike
  const name = err.name ?? 'Unknown'
  const upstream: UpstreamInfo = {
    errorName: name,
    requestId: err.$metadata?.requestId,
    httpStatus: err.$metadata?.httpStatusCode,
    attempts: err.$metadata?.attempts,
    // Connect's own answers (they carry $fault and a status) may quote the input: name only. The rest
    // never reached Connect (bad region, endpoint, credentials, DNS): the SDK's text says what to fix.
    ...(err.$fault === undefined && err.$metadata?.httpStatusCode === undefined && typeof err.message === 'string'
      ? { message: err.message.slice(0, MAX_MESSAGE) }
      : {})
  }
  const opts = { upstream, cause: raw }

  if (context.deadlineExpired) {
    return new DeadlineExceeded('Starting the chat took too long; please try again', opts)
  }
  if (THROTTLED.has(name)) {
    return new UpstreamThrottled('The chat service is busy; please try again shortly',
      { ...opts, retryAfterSeconds: retryAfterHint(err) ?? DEFAULT_RETRY_AFTER.throttled })
  }
  if (name === 'LimitExceededException') {
    return new ChatQuotaReached('All chat lines are busy; please try again in a little while',
      { ...opts, retryAfterSeconds: retryAfterHint(err) ?? DEFAULT_RETRY_AFTER.quota })
  }
  if (context.persistentChat && SOURCE_REFUSED.has(name)) {
    return new SourceContactRefused('The previous chat cannot be resumed; start a new chat instead', opts)
  }
  if (MISCONFIGURED.has(name)) {
    return new UpstreamMisconfigured('The chat service is not available right now', opts)
  }
  return new UpstreamFailed('The chat service is not available right now', opts)
}
