import helmet from '@fastify/helmet'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/**
 * Helmet tuned for a JSON API: nothing here is a page, so the CSP allows nothing to load and no one
 * to frame us. A route that serves a page (API docs) brings its own CSP through route config `helmet`.
 */
async function securityHeaders (app: FastifyInstance) {
  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] }
    },
    // Browsers fetch us with CORS, which this does not affect; it only stops no-cors embedding.
    crossOriginResourcePolicy: { policy: 'same-origin' },
    frameguard: { action: 'deny' }
  })
  // A chat start answer carries a participant token: no browser or proxy cache may keep it.
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('cache-control', 'no-store')
  })
}

export default fp(securityHeaders, { name: 'security-headers' })
