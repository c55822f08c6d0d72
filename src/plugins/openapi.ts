import swagger from '@fastify/swagger'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { readFileSync } from 'node:fs'

export interface OpenApiOptions {
  /** The interactive UI is for developers; production serves the JSON document only. */
  ui: boolean
}

// package.json sits two levels up from both src/plugins and dist/plugins.
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string; description: string }

/**
 * The OpenAPI 3 document, generated from the routes' own TypeBox schemas (so it cannot drift), at
 * GET /docs/json. Must be registered before the routes it describes.
 */
async function openapi (app: FastifyInstance, { ui }: OpenApiOptions) {
  await app.register(swagger, {
    openapi: {
      info: { title: 'connect-chat-gateway', version: pkg.version, description: pkg.description },
      tags: [{ name: 'operations', description: 'Probes for load balancers and orchestrators' }]
    }
  })

  if (ui) {
    // Imported only here, so a production install never needs the UI's assets.
    const { default: swaggerUi } = await import('@fastify/swagger-ui')
    // staticCSP: the UI needs its own scripts and styles, which the API's strict CSP forbids.
    await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true })
  } else {
    app.get('/docs/json', { schema: { hide: true } }, async () => app.swagger())
  }
}

export default fp(openapi, { name: 'openapi' })
