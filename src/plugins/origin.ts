import cors, { type FastifyCorsOptions } from '@fastify/cors'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { OriginNotAllowed } from '../errors.js'
import { widgetLabel } from '../metrics.js'
import type { Widget } from '../widgets/index.js'

export { wildcardMatcher } from '../widgets/index.js'

export interface OriginPolicyOptions { config: Config }

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
 * CORS and the origin policy in one onRequest hook, at the root so it runs before body parsing and
 * for every answer, 404s included. CORS headers alone protect nothing (a text/plain POST skips the
 * preflight), so an unlisted Origin is refused with 403 here, before the body is read. Each widget
 * profile has its own list (see plugins/widget.ts, which resolves the profile first).
 */
async function originPolicy (app: FastifyInstance, { config }: OriginPolicyOptions) {
  // Built once per profile (and again for the new ones after a reload), not per request.
  const perWidget = new WeakMap<Widget, FastifyCorsOptions>()
  const optionsFor = (widget: Widget): FastifyCorsOptions => {
    let options = perWidget.get(widget)
    if (!options) {
      options = { ...common, origin: originCheck(widget) }
      perWidget.set(widget, options)
    }
    return options
  }
  const originCheck = (widget: Widget): FastifyCorsOptions['origin'] => (origin, callback) => {
    if (origin === undefined) {
      // Not a browser asking cross-origin (mobile apps, curl, probes): no CORS headers needed.
      callback(null, false)
      return
    }
    if (widget.isOriginAllowed(origin)) {
      callback(null, true)
      return
    }
    app.metrics.originRefused.inc(widgetLabel(widget.named))
    callback(new OriginNotAllowed('This origin may not call this service'), false)
  }
  const common: FastifyCorsOptions = {
    methods: ['POST'],
    allowedHeaders: ['content-type', 'idempotency-key', 'authorization', 'human-check'],
    // Widgets may read these on a 429/503 to back off.
    exposedHeaders: ['retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'],
    maxAge: PREFLIGHT_MAX_AGE_SECONDS,
    credentials: false
  }

  await app.register(cors, {
    delegator: (request, callback) => callback(null, optionsFor(request.widget))
  })

  // The browser sees only an opaque CORS failure, so the log names the origin that was refused, for
  // the operator to add it (or not). The request's log lines already carry its widget.
  app.addHook('onError', (request, _reply, error, done) => {
    if (error instanceof OriginNotAllowed) {
      const origin = request.headers.origin
      if (origin === undefined) request.log.info('origin refused: no Origin header, and REQUIRE_ORIGIN=true')
      else {
        request.log.info({ origin: loggableOrigin(origin) },
          `origin refused: not in ${request.widget.named === undefined ? 'ALLOWED_ORIGINS' : 'the widget\'s allowedOrigins'}`)
      }
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

  if (config.REQUIRE_ORIGIN) {
    // Browsers send Origin on every POST, same-origin included; GETs stay open for probes and scrapers.
    app.addHook('onRequest', (request, _reply, done) => {
      if (request.method === 'POST' && request.headers.origin === undefined) {
        app.metrics.originRefused.inc(widgetLabel(request.widget.named))
        done(new OriginNotAllowed('An Origin header is required'))
      } else done()
    })
  }
}

export default fp(originPolicy, { name: 'origin-policy' })
