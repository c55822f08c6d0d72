import type { FastifyInstance } from 'fastify'

export const JSON_BODY_TYPES = ['application/json', 'text/plain', 'application/x-www-form-urlencoded']

/**
 * The sample clients post JSON as text/plain or form-urlencoded (jQuery's default) to avoid a CORS
 * preflight, and navigator.sendBeacon sends a string as text/plain: all three are parsed as JSON in
 * the calling plugin. Any other type is answered 415 by Fastify.
 */
export function acceptJsonBodies (app: FastifyInstance): void {
  app.removeContentTypeParser(['text/plain'])
  app.addContentTypeParser(['text/plain', 'application/x-www-form-urlencoded'], { parseAs: 'string' },
    app.getDefaultJsonParser('error', 'error'))
}
