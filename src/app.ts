import Fastify, { LogController, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { ConnectClientConfig } from '@aws-sdk/client-connect'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Config } from './config.js'
import { ChatStarter, type Pacer } from './connect/chat-starter.js'
import { createConnectClient } from './connect/client.js'
import { watchCredentials } from './connect/credentials.js'
import { createPacer } from './connect/pacer.js'
import { loggerOptions } from './logger.js'
import { createMetrics, pacerObserver, retryObserver, starterObserver, type Metrics } from './metrics.js'
import { errorWithoutStack } from './errors.js'
import { backgroundErrorReporter, type BackgroundErrorReporter } from './background-errors.js'
import clientAddress from './plugins/client-address.js'
import connectionBudget from './plugins/connection-budget.js'
import errorHandler, { clientErrorHandler, frameworkErrorHandler } from './plugins/error-handler.js'
import health from './plugins/health.js'
import metricsPlugin from './plugins/metrics.js'
import openapi from './plugins/openapi.js'
import requestLog, { genReqId } from './plugins/request-log.js'
import originPolicy from './plugins/origin.js'
import rateLimit from './plugins/rate-limit.js'
import securityHeaders from './plugins/security-headers.js'
import widgetPlugin from './plugins/widget.js'
import chatStartRoute from './routes/chat-start.js'
import type { TrustPolicy } from './trust/index.js'
import { createRedis } from './redis.js'
import type { Clock } from './refusal-log.js'
import { createWidgets, type Widgets } from './widgets/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
    widgets: Widgets
    /** Errors of work no request waits on: counted, logged once per source, survived. */
    backgroundError: BackgroundErrorReporter
  }
}

export interface AppDeps {
  /** Extra SDK settings (endpoint, credentials); tests and the simulator use them. */
  connectOverrides?: Partial<ConnectClientConfig>
  /** Where logs go; tests capture them. Defaults to stdout. */
  logStream?: NodeJS.WritableStream
  /** The default profile's trust policy. */
  trust?: TrustPolicy
  /** Where WIDGETS_FILE's `secretEnv` names are looked up; the process environment by default. */
  env?: Record<string, string | undefined>
  pacer?: Pacer
  /** Longest wait for the first credentials attempt before the app is returned (default 5 s). */
  credentialsWaitMs?: number
  /** Time for the refusal log's windows; tests pass a fake one. */
  clock?: Clock
}

/**
 * The public HTTP server. Slow clients: headers within a few seconds and the whole request within
 * REQUEST_TIMEOUT_MS, checked every second (Node checks every 30 s by default, which a drip-fed body
 * outlives); an idle keep-alive connection is closed after 72 s, above a balancer's usual 60 s.
 */
const headersTimeoutMs = (requestTimeoutMs: number) => Math.min(5_000, requestTimeoutMs)

function publicServer (handler: (req: IncomingMessage, res: ServerResponse) => void, requestTimeoutMs: number): Server {
  const server = createServer({
    headersTimeout: headersTimeoutMs(requestTimeoutMs),
    requestTimeout: requestTimeoutMs,
    connectionsCheckingInterval: 1_000
  }, handler)
  server.keepAliveTimeout = 72_000
  return server
}

/** A bad WIDGETS_FILE stops start-up (ConfigError) before anything else holds a connection or a timer. */
function createOrDisconnect<T> (redis: { disconnect (): void } | undefined, create: () => T): T {
  try {
    return create()
  } catch (err) {
    redis?.disconnect()
    throw err
  }
}

/** Builds the whole service; reading this function tells the request path in order. */
export async function buildApp (config: Config, deps: AppDeps = {}) {
  const fastifyOptions: FastifyServerOptions = {
    logger: loggerOptions(config, deps.logStream),
    // One line per request is written by our own hook, without bodies or headers.
    logController: new LogController({ disableRequestLogging: true }),
    // X-Request-Id from the load balancer only when well formed (see genReqId), else our own.
    requestIdHeader: false,
    genReqId,
    trustProxy: config.trustProxy,
    serverFactory: (handler) => publicServer(handler, config.REQUEST_TIMEOUT_MS),
    clientErrorHandler,
    frameworkErrors: frameworkErrorHandler,
    bodyLimit: 16 * 1024,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // The error handler answers from `error.validation`; the default formatter would build a
    // message no one reads and capture a stack for every refused body (see docs/BENCHMARKS.md).
    schemaErrorFormatter: (_errors, dataVar) => errorWithoutStack(`${dataVar} is not valid`),
    // Off: the health plugin answers requests that arrive while draining, in our error shape.
    return503OnClosing: false,
    ajv: {
      customOptions: {
        // Unknown fields must be refused by name, not dropped; types must match, not be coerced.
        removeAdditional: false,
        coerceTypes: false,
        allErrors: true,
        // The failing schema comes with each error, so its own patternMessage/containsMessage can
        // word the answer (see the error handler); those two keywords are annotations, not rules.
        verbose: true,
        keywords: ['patternMessage', 'containsMessage']
      }
    }
  }
  const app = Fastify(fastifyOptions).withTypeProvider<TypeBoxTypeProvider>()
  const metrics = createMetrics({ upstreamInFlight: () => starter.activeCalls })
  app.decorate('metrics', metrics)
  const backgroundError = backgroundErrorReporter(app.log, metrics)
  app.decorate('backgroundError', backgroundError)

  // One Redis connection per app, shared by the rate limit, pacing and spent resume tokens; closed
  // last on shutdown. Each use fails open on its own; the client's own errors are only reported.
  const redis = config.REDIS_URL ? createRedis({ url: config.REDIS_URL }) : undefined
  redis?.on('error', (err) => backgroundError('redis', err))

  // The default profile from the environment, the others from WIDGETS_FILE (re-read by reload()).
  const widgets = createOrDisconnect(redis, () => createWidgets(config, {
    env: deps.env,
    defaultTrust: deps.trust,
    trust: { log: app.log, redis, onRedisFailed: () => metrics.redisFailOpen.inc({ use: 'resume_tokens' }) },
    onReload: (result) => {
      metrics.widgetReloads.inc({ result: result.ok ? 'applied' : 'refused' })
      if (result.ok) {
        metrics.widgetProfiles.set(result.widgets.length + 1)
        app.log.info({ file: config.WIDGETS_FILE, widgets: result.widgets }, 'widget profiles reloaded: new requests use them')
      } else {
        app.log.error({ file: config.WIDGETS_FILE, reason: result.error }, 'widget profiles NOT reloaded: the file is not valid; the previous profiles stay in use')
      }
    }
  }))
  metrics.widgetProfiles.set(widgets.ids().length + 1)
  app.decorate('widgets', widgets)

  // --- Amazon Connect: one client, one starter, for the life of the app --------------------------
  // Pacing into Connect's account-wide API quota, one schedule for all replicas through Redis.
  const pacer: Pacer | undefined = deps.pacer ?? (config.CONNECT_RATE_LIMIT === undefined ? undefined : createPacer({
    rate: config.CONNECT_RATE_LIMIT,
    burst: config.connectBurst,
    redis,
    keyPrefix: config.REDIS_KEY_PREFIX,
    maxQueue: config.CONNECT_MAX_CONCURRENCY,
    // A slot this close to the deadline would most likely spend quota on a call that ends in 504.
    callReserveMs: 500,
    events: pacerObserver(metrics, app.log)
  }))
  // Until Connect throttles, the pace is the configured one; rateChanged keeps the gauge after that.
  if (!deps.pacer && config.CONNECT_RATE_LIMIT !== undefined) metrics.pacingRate.set(config.CONNECT_RATE_LIMIT)
  const client = createConnectClient({
    region: config.AWS_REGION ?? 'us-east-1',
    maxAttempts: config.CONNECT_MAX_ATTEMPTS,
    attemptTimeoutMs: config.CONNECT_ATTEMPT_TIMEOUT_MS,
    maxSockets: config.CONNECT_MAX_CONCURRENCY,
    observer: retryObserver(metrics),
    overrides: deps.connectOverrides
  })
  // Readiness follows credentials: resolved once now (a bounded wait), retried with backoff until then.
  const credentials = watchCredentials(client, {
    waitMs: deps.credentialsWaitMs,
    events: {
      resolved: (info) => app.log.info(info, 'AWS credentials resolved'),
      failed: (info) => app.log.error(info, 'no AWS credentials: readiness answers 503 until they resolve')
    }
  })
  const starter = new ChatStarter({
    client,
    timeoutMs: config.CHAT_START_TIMEOUT_MS,
    maxConcurrency: config.CONNECT_MAX_CONCURRENCY,
    pacer,
    ...starterObserver(metrics)
  })
  app.addHook('onClose', async () => {
    credentials.close()
    await pacer?.close?.()
    await widgets.close()
    client.destroy()
    if (redis) await redis.quit().catch(() => redis.disconnect())
  })

  // --- The request path, in order ------------------------------------------------------------------
  // Before anything reads a byte: who the caller is, and how many connections they may hold.
  await app.register(connectionBudget, { perClient: config.maxConnectionsPerClient, firstByteTimeoutMs: headersTimeoutMs(config.REQUEST_TIMEOUT_MS) })
  await app.register(clientAddress, { trustProxy: config.trustProxy })
  await app.register(errorHandler)
  await app.register(requestLog, { clock: deps.clock })
  // In production the document and /metrics live on METRICS_PORT only (see server.ts).
  const production = config.NODE_ENV === 'production'
  await app.register(openapi, { ui: !production, route: !production })
  await app.register(metricsPlugin, { exposeRoute: config.metricsPort === undefined, onCollectError: (err) => backgroundError('metrics', err) })
  // Root-level onRequest hooks, so every answer (404s and errors included) gets these headers, and
  // an unlisted Origin is refused before the body is read. The limit hooks onto the routes it names.
  await app.register(securityHeaders)
  // Which widget profile: before the origin policy, which answers per profile.
  await app.register(widgetPlugin, { widgets })
  await app.register(originPolicy, { config })
  // After the origin policy, so the 503 answered to requests arriving during a drain carries CORS too.
  await app.register(health, { onSampleError: (err) => backgroundError('health_sampler', err), notReady: () => credentials.notReadyReason })
  await app.register(rateLimit, { config, redis })
  await app.register(chatStartRoute, { config, starter })

  await credentials.firstAttempt

  return app
}

export type App = Awaited<ReturnType<typeof buildApp>>
