import { Agent } from 'node:https'
import { Agent as HttpAgent } from 'node:http'
import { ConnectClient, type ConnectClientConfig } from '@aws-sdk/client-connect'
import { StandardRetryStrategy } from '@smithy/core/retry'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import type { RetryErrorInfo, StandardRetryToken } from '@smithy/types'

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

/** One client per process: its agent keeps TLS connections to Connect warm between chat starts. */
export function createConnectClient (options: ConnectClientOptions): ConnectClient {
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets, maxFreeSockets: Math.min(options.maxSockets, 64) }
  return new ConnectClient({
    region: options.region,
    retryStrategy: new ChatStartRetryStrategy(options.maxAttempts, options.observer),
    requestHandler: new NodeHttpHandler({
      httpsAgent: new Agent(agentOptions),
      httpAgent: new HttpAgent(agentOptions),
      connectionTimeout: Math.min(options.attemptTimeoutMs, 2_000),
      requestTimeout: options.attemptTimeoutMs,
      // Without this the handler only logs a warning when an attempt runs past requestTimeout.
      throwOnRequestTimeout: true
    }),
    ...options.overrides
  })
}
