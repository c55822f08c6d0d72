import Fastify, { LogController, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { ConnectClientConfig } from '@aws-sdk/client-connect'
import type { DynamoDBClientConfig } from '@aws-sdk/client-dynamodb'
import type { Clock } from './clock.js'
import type { Config } from './config.js'
import { ChatStarter, type Pacer } from './connect/chat-starter.js'
import { createConnectClient } from './connect/client.js'
import { watchCredentials } from './connect/credentials.js'
import { createPacer } from './connect/pacer.js'
import { loggerOptions } from './logger.js'
import { createMetrics, pacerObserver, quotaObserver, retryObserver, starterObserver, widgetLabel, type Metrics } from './metrics.js'
import { errorWithoutStack } from './errors.js'
import { hardenedServer } from './http-server.js'
import { backgroundErrorReporter, type BackgroundErrorReporter } from './background-errors.js'
import { trustedPeer } from './client-address.js'
import clientAddress from './plugins/client-address.js'
import connectionBudget from './plugins/connection-budget.js'
import errorHandler, { clientErrorHandler, frameworkErrorHandler } from './plugins/error-handler.js'
import health from './plugins/health.js'
import metricsPlugin, { METRICS_MAX_CONNECTIONS } from './plugins/metrics.js'
import openapi from './plugins/openapi.js'
import requestLog, { genReqId } from './plugins/request-log.js'
import originPolicy from './plugins/origin.js'
import rateLimit from './plugins/rate-limit.js'
import securityHeaders from './plugins/security-headers.js'
import widgetPlugin from './plugins/widget.js'
import availability from './plugins/availability.js'
import availabilityRoute, { closedCheck } from './routes/availability.js'
import chatStartRoute from './routes/chat-start.js'
import chatEndRoute from './routes/chat-end.js'
import chatChallengeRoute from './routes/chat-challenge.js'
import { ChatQuota } from './chat/quota.js'
import { Contacts } from './connect/contacts.js'
import { EndTokens } from './trust/end-token.js'
import { HumanCheck, type HumanCheckOptions } from './trust/human-check.js'
import { createTrustShared, type TrustPolicy, type TrustSettings } from './trust/index.js'
import { readServiceInfo, type ServiceInfo } from './service-info.js'
import { createStateStore, STORE_NAMES } from './state/store.js'
import { createWidgets, type Widgets, type WidgetsSettings } from './widgets/index.js'
import type { HumanCheckSpec } from './widgets/file.js'

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
  /** The clock of live-chat counts and tokens; tests move it instead of waiting. */
  now?: () => number
  /** The time of pacing, the chat-start deadline, the in-process rate windows and the refusal log's windows (the system clock by default). */
  clock?: Clock
  /** Proof-of-work difficulty and the provider's time to answer; tests make both small. */
  humanCheck?: Pick<HumanCheckOptions, 'pow' | 'verifyTimeoutMs'>
  /** The availability poller's clock (tests move it across opening hours). */
  availabilityNow?: () => number
  /** The running build (read from the package and dist/ by default). */
  service?: ServiceInfo
  /** Open connections on the public port, probe slots included (default: what descriptors and memory allow). */
  maxConnections?: number
  /**
   * No listener of its own (the Lambda entry, src/lambda.ts): requests arrive through inject, so the
   * socket hardening and connection budget have nothing to guard, /metrics is served nowhere (each
   * execution environment counts alone), readiness does not sample event-loop delay (a thaw looks
   * like minutes of it), and availability is refreshed by the requests that read it, not on a timer
   * that would run while the environment is frozen.
   */
  serverless?: boolean
  /** Extra DynamoDB SDK settings for STATE_STORE=dynamodb (endpoint, credentials); AWS_ENDPOINT_URL_DYNAMODB works too. */
  dynamoOverrides?: Partial<DynamoDBClientConfig>
}

/** An idle keep-alive connection on the public port is closed after this: above a balancer's usual 60 s. */
const KEEP_ALIVE_MS = 72_000

/** A bad WIDGETS_FILE stops start-up (ConfigError) before anything else holds a connection or a timer. */
function createOrClose<T> (state: { close (): Promise<void> }, create: () => T): T {
  try {
    return create()
  } catch (err) {
    void state.close()
    throw err
  }
}

/** `Root=1-…;Parent=…;Sampled=1` and its kin, bounded; anything else is not logged. */
const TRACE_ID = /^[A-Za-z0-9=;:.,_-]{1,256}$/

/** Builds the whole service; reading this function tells the request path in order. */
export async function buildApp (config: Config, deps: AppDeps = {}) {
  const fromTrustedProxy = trustedPeer(config.trustProxy)
  const fastifyOptions: FastifyServerOptions = {
    logger: loggerOptions({ level: config.LOG_LEVEL, pretty: !config.production }, deps.logStream),
    // One line per request is written by our own hook, without bodies or headers.
    logController: new LogController({ disableRequestLogging: true }),
    // X-Request-Id from a TRUST_PROXY balancer only, and only when well formed (see genReqId), else our own.
    requestIdHeader: false,
    genReqId: (req) => genReqId(req, fromTrustedProxy(req.socket.remoteAddress)),
    // The ALB's trace id on every line of the request, beside our id: what AWS support and X-Ray look up.
    childLoggerFactory: (logger, bindings, options, req) => {
      const trace = req.headers['x-amzn-trace-id']
      return logger.child(typeof trace === 'string' && TRACE_ID.test(trace) ? { ...bindings, amznTraceId: trace } : bindings, options)
    },
    trustProxy: config.trustProxy,
    // Serverless, Fastify's own server is made and never listens.
    serverFactory: deps.serverless ? undefined : (handler) => hardenedServer(handler, { requestTimeoutMs: config.REQUEST_TIMEOUT_MS, keepAliveTimeoutMs: KEEP_ALIVE_MS }),
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
        keywords: ['patternMessage', 'containsMessage', 'notMessage']
      }
    }
  }
  const app = Fastify(fastifyOptions).withTypeProvider<TypeBoxTypeProvider>()
  const service = deps.service ?? readServiceInfo()
  const metrics = createMetrics({ upstreamInFlight: () => starter.activeCalls })
  app.decorate('metrics', metrics)
  const backgroundError = backgroundErrorReporter(app.log, metrics)
  app.decorate('backgroundError', backgroundError)

  // Shared state (STATE_STORE): one connection per app, to Redis or the DynamoDB table, closed last on
  // shutdown. Rate limits, pacing and the availability lock fail open on their own; what must be
  // shared to be safe (spent tokens, proofs) is refused while the store cannot confirm it.
  const state = createStateStore({
    kind: config.stateStore,
    keyPrefix: config.REDIS_KEY_PREFIX,
    timeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
    redisUrl: config.REDIS_URL,
    tableName: config.STATE_TABLE,
    region: config.AWS_REGION
  }, {
    log: app.log,
    now: deps.now,
    clock: deps.clock,
    onRefused: (use) => metrics.stateUnavailable.inc({ use }),
    onError: backgroundError,
    dynamoOverrides: deps.dynamoOverrides
  })

  // Resume-token keys and spent-token memory, shared by every widget profile; the keys sign end tokens too.
  const trustOptions = { log: app.log, spent: state.spentResumes, now: deps.now }
  const trustShared = createTrustShared(trustSettings(config), trustOptions)
  const endTokens = new EndTokens(trustShared.keys, deps.now)
  // The human check asked of anonymous callers (HUMAN_CHECK, or a widget's own); each proof is spent
  // for every replica. A pow key must be the same on every replica: HUMAN_CHECK_SECRET, else the resume key.
  // Without either secret, the resume keys' own random key (one per process, already warned about).
  const powKey = config.HUMAN_CHECK_SECRET ?? config.resumeSecrets[0] ?? Buffer.from(trustShared.keys[0]!).toString('base64url')
  const humanCheckFor = ({ kind, when, secret }: HumanCheckSpec) => kind === 'off' ? undefined : new HumanCheck({
    kind,
    when,
    secret: secret ?? powKey,
    verifyUrl: config.HUMAN_CHECK_VERIFY_URL,
    spent: state.spentProofs,
    now: deps.now,
    ...deps.humanCheck
  })
  const humanCheck = humanCheckFor({ kind: config.HUMAN_CHECK, when: config.HUMAN_CHECK_WHEN })

  // The default profile from the environment, the others from WIDGETS_FILE (re-read by reload()).
  const widgets = createOrClose(state, () => createWidgets(widgetsSettings(config), {
    env: deps.env,
    defaultTrust: deps.trust,
    humanCheck,
    humanCheckFor,
    trust: { ...trustOptions, shared: trustShared },
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
  // Pacing into Connect's account-wide API quota, one schedule for all replicas through the shared store.
  const pacer: Pacer | undefined = deps.pacer ?? (config.CONNECT_RATE_LIMIT === undefined ? undefined : createPacer({
    rate: config.CONNECT_RATE_LIMIT,
    burst: config.connectBurst,
    ...(state.pacing ? { shared: state.pacing } : {}),
    maxQueue: config.CONNECT_MAX_CONCURRENCY,
    // A slot this close to the deadline would most likely spend quota on a call that ends in 504.
    callReserveMs: 500,
    events: pacerObserver(metrics, app.log),
    clock: deps.clock
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
    ...starterObserver(metrics),
    clock: deps.clock
  })
  // Connect's concurrent-chat quota: live chats per caller, for anonymous callers, and in all.
  const contacts = new Contacts(client, config.CONNECT_ATTEMPT_TIMEOUT_MS)
  const quota = new ChatQuota({
    liveChats: state.liveChats,
    ...(state.liveChatsFallback ? { fallback: state.liveChatsFallback } : {}),
    limits: {
      perCaller: config.MAX_OPEN_CHATS_PER_CALLER,
      total: config.CONNECT_MAX_ACTIVE_CHATS,
      anonymous: Math.floor(config.CONNECT_MAX_ACTIVE_CHATS * config.ANONYMOUS_CHAT_SHARE)
    },
    hasEnded: (chat) => contacts.hasEnded(chat),
    // A seat outlives the start it was taken for (pacing, retries), then frees itself.
    pendingMs: config.CHAT_START_TIMEOUT_MS + 5_000,
    now: deps.now,
    events: quotaObserver(metrics, app.log)
  })
  metrics.liveChatsSource(() => quota.counts())
  app.addHook('onClose', async () => {
    credentials.close()
    await pacer?.close?.()
    await widgets.close()
    client.destroy()
    await state.close()
  })

  // --- The request path, in order ------------------------------------------------------------------
  // Before anything reads a byte: who the caller is, and how many connections they may hold.
  if (!deps.serverless) {
    await app.register(connectionBudget, {
      perClient: config.maxConnectionsPerClient,
      total: deps.maxConnections,
      // The admin port's connections come out of the same descriptors.
      reservedElsewhere: config.metricsPort === undefined ? 0 : METRICS_MAX_CONNECTIONS,
      keepAliveTimeoutMs: KEEP_ALIVE_MS
    })
  }
  await app.register(clientAddress, { trustProxy: config.trustProxy })
  await app.register(errorHandler)
  await app.register(requestLog, { clock: deps.clock })
  // In production the document and /metrics live on METRICS_PORT only (see server.ts).
  await app.register(openapi, { ui: !config.production, route: !config.production, version: service.version })
  await app.register(metricsPlugin, { exposeRoute: !deps.serverless && config.metricsPort === undefined, onCollectError: (err) => backgroundError('metrics', err) })
  // Root-level onRequest hooks, so every answer (404s and errors included) gets these headers, and
  // an unlisted Origin is refused before the body is read. The limit hooks onto the routes it names.
  await app.register(securityHeaders)
  // Which widget profile: before the origin policy, which answers per profile.
  await app.register(widgetPlugin, { widgets })
  await app.register(originPolicy, { requireOrigin: config.REQUIRE_ORIGIN })
  // After the origin policy, so the 503 answered to requests arriving during a drain carries CORS too.
  await app.register(health, { onSampleError: (err) => backgroundError('health_sampler', err), notReady: () => credentials.notReadyReason, service, pressure: !deps.serverless })
  await state.ready()
  await app.register(rateLimit, {
    max: config.RATE_LIMIT_MAX,
    timeWindowMs: config.rateLimitWindowMs,
    windows: state.rateWindows,
    ...(state.rateWindowsFallback ? { fallback: { windows: state.rateWindowsFallback, storeName: STORE_NAMES[state.kind] } } : {}),
    clock: deps.clock
  })
  // GET /chat/availability, answered from one poller per deployment; a closed queue can refuse starts.
  await app.register(availability, {
    region: config.AWS_REGION ?? 'us-east-1',
    attemptTimeoutMs: config.CONNECT_ATTEMPT_TIMEOUT_MS,
    refreshMs: config.availabilityRefreshMs,
    // A WIDGETS_FILE may name a queue on a reload: the poller runs from the start.
    mayWatch: config.WIDGETS_FILE !== undefined,
    widgets,
    share: state.availability,
    credentials: client.config.credentials,
    overrides: deps.connectOverrides,
    now: deps.availabilityNow,
    refreshOnRequest: deps.serverless === true
  })
  await app.register(availabilityRoute, { poller: app.availability, maxAgeSeconds: Math.max(1, Math.round(config.availabilityRefreshMs / 1000)) })
  await app.register(chatStartRoute, {
    rateLimit: { max: config.RATE_LIMIT_MAX, windowMs: config.rateLimitWindowMs },
    clock: deps.clock,
    deps: {
      starter,
      quota,
      endTokens,
      whenClosed: closedCheck(app.availability),
      maxDuration: { all: config.MAX_CHAT_DURATION_MINUTES, anonymous: config.ANONYMOUS_MAX_CHAT_DURATION_MINUTES },
      onRefused: (error, widget) => metrics.chatStarts.inc({ outcome: error.code.toLowerCase(), ...widgetLabel(widget.named) })
    }
  })
  await app.register(chatEndRoute, { deps: { contacts, quota, endTokens, onEnded: (outcome) => metrics.chatsEnded.inc({ outcome }) }, rateLimit: { max: 2 * config.RATE_LIMIT_MAX, timeWindow: config.rateLimitWindowMs } })
  await app.register(chatChallengeRoute, { rateLimit: { max: 3 * config.RATE_LIMIT_MAX, timeWindow: config.rateLimitWindowMs } })

  await credentials.firstAttempt

  return app
}

export type App = Awaited<ReturnType<typeof buildApp>>

// --- What the modules are told: each its own slice of the Config -----------------------------------

/** Resume and customer-token settings, the same for every widget, and the default profile's trust. */
export function trustSettings (config: Config): TrustSettings {
  return {
    resumeSecrets: config.resumeSecrets,
    resumeTokenTtlSeconds: config.resumeTokenTtlSeconds,
    customerJwtMaxAgeSeconds: config.customerJwtMaxAgeSeconds,
    production: config.production,
    defaultProfile: {
      persistentChat: config.PERSISTENT_CHAT,
      customerToken: {
        required: config.REQUIRE_CUSTOMER_TOKEN,
        secret: config.CUSTOMER_JWT_SECRET,
        jwksUrl: config.CUSTOMER_JWKS_URL,
        audience: config.CUSTOMER_JWT_AUDIENCE,
        issuer: config.CUSTOMER_JWT_ISSUER
      },
      relatedChats: config.RELATED_CHATS
    }
  }
}

/** The default widget profile the environment describes, what named profiles fall back to, and WIDGETS_FILE. */
export function widgetsSettings (config: Config): WidgetsSettings {
  return {
    file: config.WIDGETS_FILE,
    target: { instanceId: config.instanceId, contactFlowId: config.contactFlowId },
    origins: { exact: config.allowedOrigins, wildcards: config.allowedOriginWildcards },
    allowedAttributes: config.allowedAttributes,
    featurePermissions: { MESSAGING_MARKDOWN: config.FEATURE_MARKDOWN, ATTACHMENTS: config.FEATURE_ATTACHMENTS },
    contactFields: {
      ...(config.segmentAttributes !== undefined ? { segmentAttributes: config.segmentAttributes } : {}),
      ...(config.DISCONNECT_ON_CUSTOMER_EXIT !== undefined ? { disconnectOnCustomerExit: [config.DISCONNECT_ON_CUSTOMER_EXIT] } : {}),
      ...(config.RESPONSE_MODE !== undefined ? { responseMode: config.RESPONSE_MODE } : {}),
      claimAttributes: config.claimAttributes,
      customerIdClaim: config.CUSTOMER_ID_CLAIM
    },
    queueId: config.CONNECT_QUEUE_ID,
    refuseWhenClosed: config.REFUSE_WHEN_CLOSED,
    trust: trustSettings(config)
  }
}
