import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/**
 * The headers every answer carries, for a JSON API (OWASP REST Security Cheat Sheet): nothing here
 * is a page, so nothing may load, frame or cache it. A chat start answer carries a participant
 * token: no browser or proxy cache may keep it. Fixed values, set once per answer; a route that
 * serves a page (the API docs outside production) sets its own CSP later in the request.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'cache-control': 'no-store',
  'content-security-policy': 'default-src \'none\';frame-ancestors \'none\';base-uri \'none\';form-action \'none\'',
  'cross-origin-opener-policy': 'same-origin',
  // Browsers fetch us with CORS, which this does not affect; it only stops no-cors embedding.
  'cross-origin-resource-policy': 'same-origin',
  'origin-agent-cluster': '?1',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-frame-options': 'DENY',
  'x-permitted-cross-domain-policies': 'none',
  // The XSS auditor is gone from browsers; 0 keeps an old one from making things worse.
  'x-xss-protection': '0'
})

async function securityHeaders (app: FastifyInstance) {
  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(SECURITY_HEADERS)
    done()
  })
}

export default fp(securityHeaders, { name: 'security-headers' })
