import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import helmet, { type HelmetOptions } from 'helmet'
import type { IncomingMessage, ServerResponse } from 'node:http'

/**
 * Helmet tuned for a JSON API: nothing here is a page, so the CSP allows nothing to load and no one
 * to frame us. A route that serves a page (API docs) sets its own CSP later in the request.
 */
export const HELMET_OPTIONS: HelmetOptions = {
  contentSecurityPolicy: {
    useDefaults: false,
    directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] }
  },
  // Browsers fetch us with CORS, which this does not affect; it only stops no-cors embedding.
  crossOriginResourcePolicy: { policy: 'same-origin' },
  frameguard: { action: 'deny' }
}

/**
 * The headers helmet sets, computed once. @fastify/helmet rebuilds the helmet middleware on every
 * request; with no per-request nonces the result never changes, and refusing abuse must stay cheap
 * (docs/BENCHMARKS.md).
 */
export function helmetHeaders (options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {}
  const res = {
    setHeader (name: string, value: string | number | string[]) { headers[name.toLowerCase()] = String(value) },
    removeHeader (name: string) { delete headers[name.toLowerCase()] }
  }
  helmet(options)({} as IncomingMessage, res as unknown as ServerResponse, (err?: unknown) => { if (err) throw err })
  // A chat start answer carries a participant token: no browser or proxy cache may keep it.
  headers['cache-control'] = 'no-store'
  return headers
}

async function securityHeaders (app: FastifyInstance) {
  const headers = helmetHeaders(HELMET_OPTIONS)
  app.addHook('onRequest', async (_request, reply) => {
    reply.headers(headers)
  })
}

export default fp(securityHeaders, { name: 'security-headers' })
