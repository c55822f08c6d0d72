import swagger from '@fastify/swagger'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

export interface OpenApiOptions {
  /** The interactive UI at /docs, for developers; it is a devDependency, never installed in production. */
  ui: boolean
  /** GET /docs/json on this app; off in production, where METRICS_PORT serves `app.swagger()`. */
  route: boolean
  /** The running build's version (service-info.ts), not read here: a bundle has no package.json beside it. */
  version: string
}

const DESCRIPTION = 'Chat-start gateway for Amazon Connect: validates browser requests and calls StartChatContact safely'

/**
 * The OpenAPI 3 document, generated from the routes' own TypeBox schemas (so it cannot drift), at
 * GET /docs/json (or `app.swagger()`). Must be registered before the routes it describes.
 */
async function openapi (app: FastifyInstance, { ui, route, version }: OpenApiOptions) {
  await app.register(swagger, {
    openapi: {
      info: { title: 'connect-chat-gateway', version, description: DESCRIPTION },
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
