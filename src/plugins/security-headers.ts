import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/**
 * The headers every answer carries, for a JSON API (docs/security.md lists them). Nothing here is a
 * page, so nothing may frame, sniff or cache it; a chat start answer carries a participant token
 * that no browser or proxy cache may keep. Headers that only steer a document
 * (opener and agent-cluster isolation, referrer, DNS prefetch) or long-gone browsers (the XSS
 * auditor, IE's download prompt, Flash's cross-domain policy) are left out: each costs bytes and
 * header handling on every answer, refusals included, and protects nothing on a JSON response.
 * Fixed values, set once per answer; a route that serves a page (the API docs outside production)
 * sets its own CSP later in the request.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'cache-control': 'no-store',
  'content-security-policy': 'default-src \'none\';frame-ancestors \'none\'',
  // Browsers fetch us with CORS, which this does not affect; it stops no-cors reads of an answer
  // (an <img> or <script> pointing at the API from another site).
  'cross-origin-resource-policy': 'same-origin',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY'
})

async function securityHeaders (app: FastifyInstance) {
  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(SECURITY_HEADERS)
    done()
  })
}

export default fp(securityHeaders, { name: 'security-headers' })
