import cors from '@fastify/cors'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { OriginNotAllowed } from '../errors.js'

export interface OriginPolicyOptions { config: Config }

/** Chromium caps preflight caching at two hours; longer values buy nothing there. */
const PREFLIGHT_MAX_AGE_SECONDS = 7200

/** One or more DNS labels, as a browser writes them in an Origin header (lower case, no port). */
const SUBDOMAIN = /^[a-z0-9-]+(\.[a-z0-9-]+)*$/

/**
 * `https://*.example.com` as a test: the scheme, one or more labels, then `.example.com` and the
 * port exactly. The labels are checked one by one, so `https://evil.example/x.example.com` and
 * `https://a.example.com.evil.example` do not match.
 */
export function wildcardMatcher (pattern: string): (origin: string) => boolean {
  const star = pattern.indexOf('://*.') + 3
  const head = pattern.slice(0, star)
  const tail = pattern.slice(star + 1)
  return (origin) => origin.length > head.length + tail.length && origin.startsWith(head) && origin.endsWith(tail) &&
    SUBDOMAIN.test(origin.slice(head.length, origin.length - tail.length))
}

/**
 * CORS and the origin policy in one onRequest hook, at the root so it runs before body parsing and
 * for every answer, 404s included. CORS headers alone protect nothing (a text/plain POST skips the
 * preflight), so an unlisted Origin is refused with 403 here, before the body is read.
 */
async function originPolicy (app: FastifyInstance, { config }: OriginPolicyOptions) {
  const allowed = new Set(config.allowedOrigins)
  const wildcards = config.allowedOriginWildcards.map(wildcardMatcher)
  const isAllowed = (origin: string) => allowed.has(origin) || wildcards.some((matches) => matches(origin))

  await app.register(cors, {
    origin (origin, callback) {
      if (origin === undefined) {
        // Not a browser asking cross-origin (mobile apps, curl, probes): no CORS headers needed.
        callback(null, false)
        return
      }
      if (isAllowed(origin)) {
        callback(null, true)
        return
      }
      app.metrics.originRefused.inc()
      callback(new OriginNotAllowed('This origin may not call this service'), false)
    },
    methods: ['POST'],
    allowedHeaders: ['content-type', 'idempotency-key', 'authorization'],
    // Widgets may read these on a 429/503 to back off.
    exposedHeaders: ['retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'],
    maxAge: PREFLIGHT_MAX_AGE_SECONDS,
    credentials: false
  })

  if (config.REQUIRE_ORIGIN) {
    // Browsers send Origin on every POST, same-origin included; GETs stay open for probes and scrapers.
    app.addHook('onRequest', (request, _reply, done) => {
      if (request.method === 'POST' && request.headers.origin === undefined) {
        app.metrics.originRefused.inc()
        done(new OriginNotAllowed('An Origin header is required'))
      } else done()
    })
  }
}

export default fp(originPolicy, { name: 'origin-policy' })
