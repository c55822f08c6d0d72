import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Clock } from '../clock.js'
import { RefusalLog } from '../refusal-log.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** What a route adds to its request's one log line (a started chat's contact id); null until then. */
    logFields: Record<string, unknown> | null
    /**
     * The error code of an answer this service refused on its own (a 4xx that no upstream failure
     * caused), set by the error handler; null otherwise. Only these lines are sampled.
     */
    refusal: string | null
  }
  interface FastifyInstance {
    /** Which refusals get a line of their own (see refusal-log.ts); the client error handler asks it too. */
    refusalLog: RefusalLog
  }
}

/** UUIDs, nginx's $request_id, ALB and X-Ray style ids; nothing that could forge a log line. */
const WELL_FORMED_ID = /^[A-Za-z0-9._:=+/-]{1,128}$/

/**
 * Fastify's genReqId: keeps the load balancer's X-Request-Id when it is well formed and came from a
 * TRUST_PROXY balancer, so one id follows a request across the LB and every replica's log;
 * otherwise a fresh UUID (a client's own id could pass its request off as another's).
 */
export function genReqId (req: IncomingMessage, fromTrustedProxy: boolean): string {
  const given = req.headers['x-request-id']
  return fromTrustedProxy && typeof given === 'string' && WELL_FORMED_ID.test(given) ? given : randomUUID()
}

/** The path a request tried, bounded, without the query string (which may carry anything). */
export function requestPath (url: string): string {
  return (url.split('?')[0] ?? '').slice(0, 200)
}

/** Probes and scrapes arrive every few seconds from every LB and Prometheus: debug, not info. */
const QUIET_ROUTES = new Set(['/health/live', '/health/ready', '/metrics'])
/** Asked on every page view of the sites embedding a widget: answered ones at debug, refusals at info. */
const QUIET_WHEN_ANSWERED = new Set(['/chat/availability', '/chat/availability/:widget'])

export interface RequestLogOptions {
  /** Moves the refusal windows; the process's clock by default. */
  clock?: Clock
}

/**
 * Refusals per window with a line of their own: 5 of each kind per client, 100 in all. An attacker
 * with many addresses fills the 1,000 tracked clients, and the rest are summed as other clients.
 */
const REFUSAL_LINES = { perClient: 5, total: 100, windowMs: 60_000, maxTracked: 1_000 }

/**
 * One line per request, written when the answer is sent: what an operator needs to find a
 * request, and nothing a customer typed (no headers, no body, no query string). A route adds its
 * outcome through `request.logFields` rather than a line of its own. Refusals are sampled per client
 * and kind (a flood must not bury the errors that matter); 5xx and upstream failures never are.
 */
async function requestLog (app: FastifyInstance, { clock }: RequestLogOptions) {
  const refusals = new RefusalLog({
    ...REFUSAL_LINES,
    clock,
    summarize: (summary) => app.log.info(summary, 'refusals summarised')
  })
  app.decorate('refusalLog', refusals)
  app.addHook('onClose', (_app, done) => { refusals.close(); done() })
  app.decorateRequest('logFields', null)
  app.decorateRequest('refusal', null)
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    done()
  })

  app.addHook('onResponse', (request, reply, done) => {
    if (request.refusal !== null && !refusals.admit(request.clientKey || 'unknown', request.refusal, reply.statusCode)) {
      done()
      return
    }
    const route = request.routeOptions.url
    const quiet = route !== undefined && (QUIET_ROUTES.has(route) || (QUIET_WHEN_ANSWERED.has(route) && reply.statusCode < 400))
    const level = quiet ? 'debug' : 'info'
    request.log[level]({
      method: request.method,
      route: route ?? '(no route)',
      // Only unmatched requests say which path they tried; never the query string.
      ...(route === undefined ? { path: requestPath(request.url) } : {}),
      statusCode: reply.statusCode,
      responseTime: Math.round(reply.elapsedTime * 10) / 10,
      remoteAddress: request.clientAddress,
      ...(request.refusal === null ? {} : { code: request.refusal }),
      ...request.logFields
    }, 'request completed')
    done()
  })
}

export default fp(requestLog, { name: 'request-log', dependencies: ['client-address'] })
