import { Agent } from 'node:https'
import { Agent as HttpAgent } from 'node:http'
import { ConnectClient, type ConnectClientConfig, type ServiceInputTypes, type ServiceOutputTypes, type StartChatContactCommand, type StartChatContactCommandOutput } from '@aws-sdk/client-connect'
import { StandardRetryStrategy } from '@smithy/core/retry'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import type { FinalizeRequestMiddleware, HttpHandlerOptions, RetryErrorInfo, StandardRetryToken } from '@smithy/types'

export interface RetryObserver {
  /** Every HTTP attempt toward Connect, the first one included. */
  onAttempt?: () => void
  /** An attempt failed and the SDK will try again; errorName is the upstream error. */
  onRetry?: (errorName: string) => void
}

/**
 * The SDK's standard strategy (backoff with jitter, retry quota, Retry-After hints), except that
 * LimitExceededException is not retried: the SDK files it under throttling, but for
 * StartChatContact it means the concurrent active chat quota is full, and retrying only keeps
 * the customer waiting and spends the API quota.
 */
export class ChatStartRetryStrategy extends StandardRetryStrategy {
  constructor (maxAttempts: number, private readonly observer: RetryObserver = {}) {
    super(maxAttempts)
  }

  override async acquireInitialRetryToken (scope: string): Promise<StandardRetryToken> {
    this.observer.onAttempt?.()
    return super.acquireInitialRetryToken(scope)
  }

  override async refreshRetryTokenForRetry (token: StandardRetryToken, errorInfo: RetryErrorInfo): Promise<StandardRetryToken> {
    const name = (errorInfo.error as { name?: string } | undefined)?.name ?? 'Unknown'
    if (name === 'LimitExceededException') throw new Error('LimitExceededException is not retried')
    const next = await super.refreshRetryTokenForRetry(token, errorInfo)
    this.observer.onRetry?.(name)
    this.observer.onAttempt?.()
    return next
  }
}

export interface ConnectClientOptions {
  region?: string
  maxAttempts: number
  attemptTimeoutMs: number
  /** Sockets kept toward Connect; beyond the concurrency cap they would never be used. */
  maxSockets: number
  observer?: RetryObserver
  /** Extra SDK configuration: tests and the simulator pass an endpoint and static credentials. */
  overrides?: Partial<ConnectClientConfig>
}

/**
 * What one call brings that the client's cached middleware cannot: an abort signal for its HTTP
 * attempts, and middleware of its own around each attempt. Registered by the command's input.
 */
export interface CallSettings {
  signal: AbortSignal
  middleware?: AttemptMiddleware
}

export type AttemptMiddleware = FinalizeRequestMiddleware<ServiceInputTypes, ServiceOutputTypes>
type HttpRequest = Parameters<NodeHttpHandler['handle']>[0]

const calls = new WeakMap<object, CallSettings>()
const attemptSignals = new WeakMap<HttpRequest, AbortSignal>()

/**
 * Sends `command` with `settings`. The client resolves its middleware once (`cacheMiddleware`), which
 * the SDK only does for calls without per-call options: so the signal and the per-call middleware
 * travel by the command's input instead, found by the client's own middleware and request handler.
 * The SDK's retry loop does not see the signal, so the answer settles at the abort itself (an SDK
 * backoff still sleeping then finds the signal aborted before its next attempt is sent).
 */
export function sendWith (client: ConnectClient, command: StartChatContactCommand, settings: CallSettings): Promise<StartChatContactCommandOutput> {
  calls.set(command.input, settings)
  const { signal } = settings
  return new Promise((resolve, reject) => {
    const aborted = () => reject(signal.reason)
    signal.addEventListener('abort', aborted, { once: true })
    client.send(command).then(resolve, reject).finally(() => signal.removeEventListener('abort', aborted))
  })
}

/** Innermost around each attempt: the call's own middleware, then its signal handed to the HTTP handler. */
const perCall: AttemptMiddleware = (next, context) => async (args) => {
  const call = calls.get(args.input)
  if (!call) return next(args)
  call.signal.throwIfAborted()
  const attempt: typeof next = async (a) => {
    attemptSignals.set(a.request as HttpRequest, call.signal)
    return next(a)
  }
  return call.middleware ? call.middleware(attempt, context)(args) : attempt(args)
}

/** The SDK's handler, given the signal of the call an attempt belongs to. */
class PerCallHttpHandler extends NodeHttpHandler {
  override handle (request: HttpRequest, options: HttpHandlerOptions = {}) {
    const abortSignal = attemptSignals.get(request)
    return super.handle(request, abortSignal ? { ...options, abortSignal } : options)
  }
}

/** One client per process: its agent keeps TLS connections to Connect warm between chat starts. */
export function createConnectClient (options: ConnectClientOptions): ConnectClient {
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets, maxFreeSockets: Math.min(options.maxSockets, 64) }
  const client = new ConnectClient({
    region: options.region,
    // Resolving the middleware stack for every call was about a tenth of a chat start's CPU.
    cacheMiddleware: true,
    retryStrategy: new ChatStartRetryStrategy(options.maxAttempts, options.observer),
    requestHandler: new PerCallHttpHandler({
      httpsAgent: new Agent(agentOptions),
      httpAgent: new HttpAgent(agentOptions),
      connectionTimeout: Math.min(options.attemptTimeoutMs, 2_000),
      requestTimeout: options.attemptTimeoutMs,
      // Without this the handler only logs a warning when an attempt runs past requestTimeout.
      throwOnRequestTimeout: true
    }),
    ...options.overrides
  })
  client.middlewareStack.add(perCall, { step: 'finalizeRequest', priority: 'low', name: 'ccgPerCall' })
  return client
}
