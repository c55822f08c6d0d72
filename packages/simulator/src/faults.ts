// The fault and quota engine of the StartChatContact simulator: what a test or the control API
// can make it do instead of answering normally, and the per-account request-rate bucket.
import type { Clock } from './clock.js'
import { isObject } from './start-chat-wire.js'

export type ErrorFaultType =
  | 'ThrottlingException'
  | 'TooManyRequestsException'
  | 'LimitExceededException'
  | 'ResourceNotFoundException'
  | 'AccessDeniedException'
  | 'InvalidParameterException'
  | 'InvalidRequestException'
  | 'InternalServiceException'

export type Fault =
  | { type: ErrorFaultType; retryAfterSeconds?: number; message?: string }
  | { type: 'slow'; delayMs: number } // wait then answer normally
  | { type: 'hang' } // never answer (until close())
  | { type: 'reset' } // destroy the socket without a response
  | { type: 'malformed' } // 200 with a body that is not JSON

export const ERROR_STATUS: Record<ErrorFaultType, number> = {
  ThrottlingException: 429,
  TooManyRequestsException: 429,
  LimitExceededException: 429,
  ResourceNotFoundException: 404,
  AccessDeniedException: 403,
  InvalidParameterException: 400,
  InvalidRequestException: 400,
  InternalServiceException: 500
}

export const DEFAULT_FAULT_MESSAGE: Record<ErrorFaultType, string> = {
  ThrottlingException: 'Rate exceeded',
  TooManyRequestsException: 'Rate exceeded',
  LimitExceededException: 'The allowed limit for the resource has been exceeded',
  ResourceNotFoundException: 'The specified resource was not found',
  AccessDeniedException: 'You do not have sufficient access to perform this action',
  InvalidParameterException: 'One or more of the specified parameters are not valid',
  InvalidRequestException: 'The request is not valid',
  InternalServiceException: 'Request processing failed because of an error or failure with the service'
}

export const ERROR_FAULT_TYPES = Object.keys(ERROR_STATUS) as ErrorFaultType[]

/** Continuous-refill token bucket, like the per-account API quota Connect enforces. */
export class TokenBucket {
  private tokens: number
  private last: number
  constructor (
    private perSecond: number,
    private burst: number,
    private readonly clock: Clock
  ) {
    this.tokens = burst
    this.last = clock.now()
  }

  take (): boolean {
    this.refillToNow()
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }

  /** The refill so far counts at the old rate; the new one applies from now. */
  change (perSecond: number, burst: number): void {
    this.refillToNow()
    this.perSecond = perSecond
    this.burst = burst
    this.tokens = Math.min(this.tokens, burst)
  }

  private refillToNow (): void {
    const now = this.clock.now()
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond)
    this.last = now
  }

  refill (): void {
    this.tokens = this.burst
    this.last = this.clock.now()
  }
}

export interface Deferred<T> {
  promise: Promise<T>
  resolve: (value: T) => void
}

export function deferred<T> (): Deferred<T> {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

export function isRequestRate (value: unknown): value is { perSecond: number; burst: number } {
  if (!isObject(value)) return false
  const { perSecond, burst } = value
  return typeof perSecond === 'number' && perSecond > 0 && Number.isFinite(perSecond) &&
    typeof burst === 'number' && burst >= 1 && Number.isFinite(burst)
}

export function isFault (value: unknown): value is Fault {
  if (!isObject(value) || typeof value.type !== 'string') return false
  switch (value.type) {
    case 'slow':
      return typeof value.delayMs === 'number' && value.delayMs >= 0
    case 'hang':
    case 'reset':
    case 'malformed':
      return true
    default:
      return (
        (ERROR_FAULT_TYPES as string[]).includes(value.type) &&
        (value.retryAfterSeconds === undefined || typeof value.retryAfterSeconds === 'number') &&
        (value.message === undefined || typeof value.message === 'string')
      )
  }
}
