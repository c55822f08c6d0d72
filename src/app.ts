import Fastify, { LogController, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { ConnectClientConfig } from '@aws-sdk/client-connect'
import type { Config } from './config.js'
import { ChatStarter, type Pacer } from './connect/chat-starter.js'
import { createConnectClient } from './connect/client.js'
import { loggerOptions } from './logger.js'
import { createMetrics, type Metrics } from './metrics.js'
import errorHandler from './plugins/error-handler.js'
import chatStartRoute from './routes/chat-start.js'
import { createTrustPolicy, type TrustPolicy } from './trust/index.js'
import { createRedis } from './redis.js'

declare module 'fastify' {
  interface FastifyInstance { metrics: Metrics }
}

export interface AppDeps {
  /** Extra SDK settings (endpoint, credentials); tests and the simulator use them. */
  connectOverrides?: Partial<ConnectClientConfig>
  /** Where logs go; tests capture them. Defaults to stdout. */
  logStream?: NodeJS.WritableStream
  trust?: TrustPolicy
  pacer?: Pacer
}

/** Builds the whole service; reading this function tells the request path in order. */
export async function buildApp (config: Config, deps: AppDeps = {}) {
  const fastifyOptions: FastifyServerOptions = {
    logger: loggerOptions(config, deps.logStream),
    // One line per request is written by our own hook, without bodies or headers.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: config.trustProxy,
    bodyLimit: 16 * 1024,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    return503OnClosing: true,
    ajv: {
      customOptions: {
        // Unknown fields must be refused by name, not dropped; types must match, not be coerced.
        removeAdditional: false,
        coerceTypes: false,
        allErrors: true
      }
    }
  }
  const app = Fastify(fastifyOptions).withTypeProvider<TypeBoxTypeProvider>()
  const metrics = createMetrics({ upstreamInFlight: () => starter.activeCalls })
  app.decorate('metrics', metrics)

  // One Redis connection per app, shared by the rate limit and pacing; closed last on shutdown.
  const redis = config.REDIS_URL ? createRedis({ url: config.REDIS_URL }) : undefined
  // Errors are handled where Redis is used (fail open); this only keeps ioredis from crashing us.
  redis?.on('error', () => {})

  // --- Amazon Connect: one client, one starter, for the life of the app --------------------------
  const client = createConnectClient({
    region: config.AWS_REGION ?? 'us-east-1',
    maxAttempts: config.CONNECT_MAX_ATTEMPTS,
    attemptTimeoutMs: config.CONNECT_ATTEMPT_TIMEOUT_MS,
    maxSockets: config.CONNECT_MAX_CONCURRENCY,
    observer: {
      onAttempt: () => metrics.upstreamAttempts.inc(),
      onRetry: (error) => metrics.upstreamRetries.inc({ error })
    },
    overrides: deps.connectOverrides
  })
  const trust = deps.trust ?? createTrustPolicy(config)
  const starter = new ChatStarter({
    client,
    target: { instanceId: config.instanceId, contactFlowId: config.contactFlowId },
    timeoutMs: config.CHAT_START_TIMEOUT_MS,
    maxConcurrency: config.CONNECT_MAX_CONCURRENCY,
    pacer: deps.pacer,
    onOutcome: (outcome) => {
      const label = outcome.ok ? 'started' : outcome.error.code.toLowerCase()
      metrics.chatStarts.inc({ outcome: label })
      metrics.chatStartDuration.observe({ outcome: label }, outcome.durationMs / 1000)
      if (!outcome.ok && outcome.error.upstream) metrics.upstreamErrors.inc({ type: outcome.error.upstream.errorName })
    }
  })
  app.addHook('onClose', async () => {
    await deps.pacer?.close?.()
    await trust.close()
    client.destroy()
    if (redis) await redis.quit().catch(() => redis.disconnect())
  })

  // --- The request path, in order ------------------------------------------------------------------
  await app.register(errorHandler)
  // (issue 5) request id + one log line per request, metrics, health go here
  // (issue 3) security headers, origin policy / CORS, per-client rate limit go here (awaited, before routes)
  await app.register(chatStartRoute, { config, starter, trust })

  return app
}

export type App = Awaited<ReturnType<typeof buildApp>>
