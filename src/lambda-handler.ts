// The Lambda entry's factory (src/lambda.ts exports the function's handler made with it): the same
// app as `npm start`, reached through API Gateway's HTTP API instead of a socket.
import awsLambdaFastify, { type LambdaResponse, type PromiseHandler } from '@fastify/aws-lambda'
import { buildApp, type App, type AppDeps } from './app.js'
import { ConfigError, loadConfig, startupSummary, type Config } from './config.js'
import { withSecrets, type SecretsOptions } from './lambda-secrets.js'
import { readServiceInfo } from './service-info.js'

/** What API Gateway's HTTP API sends (payload format 2.0), as far as this entry reads it. */
export interface HttpApiEvent {
  version: string
  rawPath: string
  rawQueryString: string
  headers: Record<string, string>
  queryStringParameters?: Record<string, string>
  cookies?: string[]
  body?: string
  isBase64Encoded: boolean
  requestContext: {
    requestId: string
    http: { method: string; path: string; protocol?: string; sourceIp: string; userAgent?: string }
    [key: string]: unknown
  }
  [key: string]: unknown
}

export interface LambdaDeps extends AppDeps {
  /** How SECRET_IDS is read (tests point the SDK at a stand-in). */
  secrets?: SecretsOptions
}

/** The invocation context, as far as the adapter reads it. */
export type LambdaContext = Record<string, unknown>

export interface LambdaHandler {
  (event: HttpApiEvent, context?: LambdaContext): Promise<LambdaResponse>
  /** Builds the app if it is not built yet; a failed build is forgotten, so the next call tries again. */
  ready (): Promise<App>
  /** Closes the app (tests; Lambda itself just ends the environment). */
  close (): Promise<void>
}

/**
 * In Lambda the caller is the address API Gateway saw (requestContext.http.sourceIp, which the
 * adapter hands to inject as the peer): X-Forwarded-For arrives with whatever the client wrote in it,
 * so no header may name the client, whatever TRUST_PROXY says. (A CDN in front would make its own
 * addresses the callers: the API is meant to be reached directly.) An event without a sourceIp (not
 * from an HTTP API) is counted under 127.0.0.1, one shared budget, never a fresh one per request.
 */
export function lambdaConfig (config: Config): Config {
  if (config.CONNECT_SIMULATOR && !(config.AWS_ENDPOINT_URL_CONNECT ?? config.AWS_ENDPOINT_URL)) {
    throw new ConfigError('CONNECT_SIMULATOR=true in Lambda needs AWS_ENDPOINT_URL_CONNECT: the in-process simulator is not part of the function')
  }
  const warnings = [...config.warnings]
  if (config.trustProxy !== false) warnings.push('TRUST_PROXY is ignored in Lambda: the caller is the address API Gateway saw (requestContext.http.sourceIp), never a header')
  // Concurrent requests run in separate environments: what one remembers, the others do not see.
  if (config.stateStore === 'memory') warnings.push('STATE_STORE=memory in Lambda: each execution environment keeps its own rate limits, live chats and spent resume tokens, so a token spent in one is accepted in another; set STATE_STORE=dynamodb and STATE_TABLE')
  return { ...config, trustProxy: false, warnings }
}

function reportFailedStart (err: unknown): void {
  const reason = err instanceof ConfigError ? err.message : `could not start: ${(err as Error)?.stack ?? String(err)}`
  process.stderr.write(`connect-chat-gateway: ${reason}\n`)
}

/**
 * One handler per execution environment: the app is built once, by the first call (or by
 * `ready()` during the environment's init), and serves every invocation after it. Each handler is
 * an environment of its own, so tests make two in one process.
 */
export function createHandler (processEnv: Record<string, string | undefined> = process.env, deps: LambdaDeps = {}): LambdaHandler {
  const { secrets, ...appDeps } = deps
  let started: Promise<{ app: App; proxy: PromiseHandler<HttpApiEvent, LambdaResponse> }> | undefined

  async function start () {
    // SECRET_IDS' values join a copy of the environment, read again by every start that follows a failed one.
    const env = await withSecrets(processEnv, secrets)
    const config = lambdaConfig(loadConfig(env))
    const service = appDeps.service ?? readServiceInfo()
    const app = await buildApp(config, { env, ...appDeps, service, serverless: true })
    // The request's event and context are not needed by any route: no decoration, no per-call token.
    const proxy: PromiseHandler<HttpApiEvent, LambdaResponse> = awsLambdaFastify<HttpApiEvent>(app, { decorateRequest: false })
    await app.ready()
    app.log.info({ service, ...startupSummary(config, app.widgets) }, 'connect-chat-gateway starting (Lambda)')
    for (const warning of config.warnings) app.log.warn(warning)
    if (config.CONNECT_SIMULATOR) app.log.warn('CONNECT_SIMULATOR=true: chats are SIMULATED, nothing reaches Amazon Connect')
    return { app, proxy }
  }

  function ensureStarted () {
    started ??= start().catch((err: unknown) => {
      started = undefined
      reportFailedStart(err)
      throw err
    })
    return started
  }

  const handler = async (event: HttpApiEvent, context: LambdaContext = {}) => {
    const { proxy } = await ensureStarted()
    return proxy(event, context)
  }
  return Object.assign(handler, {
    ready: async () => (await ensureStarted()).app,
    close: async () => {
      const running = started
      started = undefined
      if (running) await (await running.catch(() => undefined))?.app.close()
    }
  })
}
