import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'
import { hardenedServer } from '../http-server.js'

export interface MetricsPluginOptions {
  /** Serve GET /metrics on the public port; false when METRICS_PORT gives it a port of its own. */
  exposeRoute: boolean
  /** A collection failed (a scrape while descriptors ran out, say): reported, answered 503, survived. */
  onCollectError?: (err: unknown) => void
}

/** Feeds the request latency histogram and, unless it lives on its own port, serves /metrics. */
async function metricsPlugin (app: FastifyInstance, { exposeRoute, onCollectError }: MetricsPluginOptions) {
  const { httpDuration, registry } = app.metrics

  app.addHook('onResponse', (request, reply, done) => {
    // The route pattern, never the raw URL: one series per route whatever clients send.
    httpDuration.observe({
      method: request.method,
      route: request.routeOptions.url ?? '(no route)',
      status_code: String(reply.statusCode)
    }, reply.elapsedTime / 1000)
    if (request.refusal !== null) app.metrics.requestsRefused.inc({ code: request.refusal.toLowerCase() })
    done()
  })

  if (exposeRoute) {
    app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
      try {
        const text = await registry.metrics()
        return reply.type(registry.contentType).send(text)
      } catch (err) {
        onCollectError?.(err)
        return reply.code(503).type('text/plain; charset=utf-8').send('metrics collection failed\n')
      }
    })
  }
}

export default fp(metricsPlugin, { name: 'metrics', dependencies: ['request-log'], decorators: { fastify: ['metrics'] } })

export interface MetricsServer { port: number; close (): Promise<void> }

/** Open connections the admin port takes at most: a few scrapers and probes, never a flood. */
export const METRICS_MAX_CONNECTIONS = 16

export interface MetricsServerOptions {
  port: number
  /** METRICS_HOST: loopback by default, so only the host (or the task's own sidecars) can scrape. */
  host: string
  /** REQUEST_TIMEOUT_MS, as on the public port. */
  requestTimeoutMs?: number
  /** The OpenAPI document, served at GET /docs/json here when the public port does not serve it. */
  openapi?: () => unknown
  /** The probes, answered here too: on a port the public connection budget cannot fill. */
  health?: (path: '/health/live' | '/health/ready') => Promise<{ statusCode: number; body: string }>
  onCollectError?: (err: unknown) => void
}

const json = 'application/json; charset=utf-8'

/**
 * METRICS_PORT: the admin surface on a port the load balancer does not route to, so the public
 * port never exposes it: /metrics, the probes, and in production the OpenAPI document. Plain
 * node:http: a few routes, no hooks; the same slow-client timeouts as the public port, and a
 * connection cap of its own that the public budget keeps descriptors for.
 */
export async function startMetricsServer (registry: Registry, options: MetricsServerOptions): Promise<MetricsServer> {
  const { port, host, openapi, health, onCollectError } = options
  const server = hardenedServer((req, res) => {
    const path = req.url?.split('?')[0]
    if (req.method === 'GET' && path === '/docs/json' && openapi) {
      res.writeHead(200, { 'content-type': json }).end(JSON.stringify(openapi()))
      return
    }
    if (req.method === 'GET' && health && (path === '/health/live' || path === '/health/ready')) {
      health(path).then(
        (answer) => res.writeHead(answer.statusCode, { 'content-type': json }).end(answer.body),
        (err: unknown) => { onCollectError?.(err); res.writeHead(503, { 'content-type': json }).end('{"status":"unknown"}') }
      )
      return
    }
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`Not found: try GET /metrics${openapi ? ' or GET /docs/json' : ''}\n`)
      return
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => {
        onCollectError?.(err)
        res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics collection failed\n')
      }
    )
  }, { requestTimeoutMs: options.requestTimeoutMs ?? 10_000, keepAliveTimeoutMs: 5_000, maxConnections: METRICS_MAX_CONNECTIONS })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  })
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  }
}
