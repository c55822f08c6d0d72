import cors from '@fastify/cors'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { OriginNotAllowed } from '../errors.js'
import { widgetLabel } from '../metrics.js'

export { wildcardMatcher } from '../widgets/index.js'

export interface OriginPolicyOptions {
  /** Refuse a POST without an Origin header (no mobile apps or curl). */
  requireOrigin: boolean
}

/** Chromium caps preflight caching at two hours; longer values buy nothing there. */
const PREFLIGHT_MAX_AGE_SECONDS = 7200
/** A real origin is a scheme, a host of at most 253 characters and a port. */
const MAX_LOGGED_ORIGIN = 300

/**
 * The refused Origin as the log may show it: a browser sends an ASCII origin (hosts in punycode), so
 * anything else is replaced, and a header someone made long is cut, marked by its length.
 */
export function loggableOrigin (origin: string): string {
  const printable = origin.replace(/[^\x20-\x7e]/g, '?')
  return printable.length <= MAX_LOGGED_ORIGIN ? printable : `${printable.slice(0, MAX_LOGGED_ORIGIN)}… (${printable.length} characters)`
}

/**
 * The origin policy, then CORS, both in root onRequest hooks so they run before body parsing and for
 * every answer, 404s included. CORS headers alone protect nothing (a text/plain POST skips the
 * preflight), so an unlisted Origin is refused with 403 first, before the body is read and before
 * CORS does any work. Each widget profile has its own list (see plugins/widget.ts, which resolves the
 * profile first); whatever reaches CORS is allowed, so one static set of CORS options serves every
 * profile. (A per-request options delegator rebuilt and copied those options for every request.)
 */
async function originPolicy (app: FastifyInstance, { requireOrigin }: OriginPolicyOptions) {
  app.addHook('onRequest', (request, reply, done) => {
    const origin = request.headers.origin
    if (origin === undefined) {
      // Browsers send Origin on every POST, same-origin included; GETs stay open for probes and scrapers.
      if (requireOrigin && request.method === 'POST') {
        app.metrics.originRefused.inc(widgetLabel(request.widget.named))
        done(new OriginNotAllowed('An Origin header is required'))
        return
      }
    } else if (!request.widget.isOriginAllowed(origin)) {
      app.metrics.originRefused.inc(widgetLabel(request.widget.named))
      // As CORS would have: the answer depends on Origin.
      reply.header('vary', 'Origin')
      done(new OriginNotAllowed('This origin may not call this service'))
      return
    }
    done()
  })

  await app.register(cors, {
    // Reflects the Origin of a request the hook above let through; none without one (mobile apps,
    // curl, probes are not browsers asking cross-origin).
    origin: (origin, callback) => callback(null, origin !== undefined),
    methods: ['POST'],
    allowedHeaders: ['content-type', 'idempotency-key', 'authorization', 'human-check'],
    // Widgets may read these on a 429/503 to back off.
    exposedHeaders: ['retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'],
    maxAge: PREFLIGHT_MAX_AGE_SECONDS,
    credentials: false
  })

  // The browser sees only an opaque CORS failure, so the request's log line names the origin that
  // was refused and the list to add it to (or not); the line carries its widget, and is sampled like
  // every refusal, so a flood of foreign origins does not flood the log.
  app.addHook('onError', (request, _reply, error, done) => {
    if (error instanceof OriginNotAllowed) {
      const origin = request.headers.origin
      request.logFields = origin === undefined
        ? { ...request.logFields, originRefused: 'no Origin header, and REQUIRE_ORIGIN=true' }
        : { ...request.logFields, origin: loggableOrigin(origin), originRefused: request.widget.named === undefined ? 'not in ALLOWED_ORIGINS' : 'not in the widget\'s allowedOrigins' }
    }
    done()
  })

  // Node answers `Expect: 100-continue` with "100 Continue" before any hook has run, inviting the
  // body of a request this policy is about to refuse. With a listener of our own it does not: the
  // request takes the usual path, and "100 Continue" goes out only once every onRequest check
  // (origin, rate limit, …) has passed, just before the body is read.
  app.server.on('checkContinue', (req, res) => app.server.emit('request', req, res))
  app.addHook('preParsing', (request, reply, payload, done) => {
    if (request.headers.expect?.toLowerCase() === '100-continue') reply.raw.writeContinue()
    done(null, payload)
  })
}

export default fp(originPolicy, { name: 'origin-policy', dependencies: ['widget'], decorators: { fastify: ['metrics'] } })
