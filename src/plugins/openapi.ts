import swagger from '@fastify/swagger'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { readFileSync } from 'node:fs'

export interface OpenApiOptions {
  /** The interactive UI at /docs, for developers; it is a devDependency, never installed in production. */
  ui: boolean
  /** GET /docs/json on this app; off in production, where METRICS_PORT serves `app.swagger()`. */
  route: boolean
}

// package.json sits two levels up from both src/plugins and dist/plugins.
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string; description: string }

/**
 * The OpenAPI 3 document, generated from the routes' own TypeBox schemas (so it cannot drift), at
 * GET /docs/json (or `app.swagger()`). Must be registered before the routes it describes.
 */
async function openapi (app: FastifyInstance, { ui, route }: OpenApiOptions) {
  await app.register(swagger, {
    openapi: {
      info: { title: 'connect-chat-gateway', version: pkg.version, description: pkg.description },
      tags: [{ name: 'operations', description: 'Probes for load balancers and orchestrators' }]
    }
  })

  // Imported only here, so a production install (which lacks it) never loads the UI.
  const swaggerUi = ui ? await import('@fastify/swagger-ui').then((m) => m.default, () => undefined) : undefined
  if (swaggerUi) {
    // staticCSP: the UI needs its own scripts and styles, which the API's strict CSP forbids.
    await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true })
  } else if (route) {
    app.get('/docs/json', { schema: { hide: true } }, async () => app.swagger())
  }
}

export default fp(openapi, { name: 'openapi' })
