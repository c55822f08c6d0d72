import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { WidgetNotFound } from '../errors.js'
import type { Widget, Widgets } from '../widgets/index.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The widget profile this request is for: the default one unless the path names another. */
    widget: Widget
  }
}

export interface WidgetPluginOptions { widgets: Widgets }

// A preflight is routed to the CORS plugin's catch-all, so its widget is read from the path itself.
const WIDGET_PATH = /^\/chat\/[a-z]+\/([^/?#]+)(?:\?|$)/

/** The `:widget` of any /chat/…/:widget route (start, end, challenge, availability), or of a preflight's path. */
function widgetIdOf (request: FastifyRequest): string | undefined {
  const params = request.params as { widget?: unknown } | undefined
  if (typeof params?.widget === 'string') return params.widget
  if (request.method !== 'OPTIONS') return undefined
  const raw = WIDGET_PATH.exec(request.url)?.[1]
  if (raw === undefined) return undefined
  try { return decodeURIComponent(raw) } catch { return raw }
}

/**
 * Resolves the widget profile once, in the first onRequest hook that needs it, so the origin policy
 * (which answers before the body is read) and everything after it see the same profile, even if
 * WIDGETS_FILE is reloaded meanwhile. An unknown widget is refused here, before CORS: no origin gets
 * CORS headers for a widget that does not exist.
 */
async function widgetPlugin (app: FastifyInstance, { widgets }: WidgetPluginOptions) {
  app.decorateRequest('widget', null as unknown as Widget)
  // Callback style: on every request, an async hook would cost a promise and a microtask hop.
  app.addHook('onRequest', (request, _reply, done) => {
    const id = widgetIdOf(request)
    if (id === undefined) {
      request.widget = widgets.default
      done()
      return
    }
    const widget = widgets.get(id)
    if (!widget) {
      app.metrics.widgetNotFound.inc()
      done(new WidgetNotFound('There is no chat widget with this id here'))
      return
    }
    request.widget = widget
    request.log = request.log.child({ widget: widget.id })
    done()
  })
}

export default fp(widgetPlugin, { name: 'widget', decorators: { fastify: ['metrics'] } })
