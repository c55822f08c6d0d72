import underPressure from '@fastify/under-pressure'
import type { FastifyInstance, FastifyReply } from 'fastify'
import fp from 'fastify-plugin'
import { getHeapStatistics } from 'node:v8'
import { Type } from 'typebox'
import { Overloaded } from '../errors.js'
import { ErrorReply } from '../routes/chat-start.schema.js'
import { toErrorBody } from './error-handler.js'

export interface HealthOptions {
  /** Mean event-loop delay (ms) above which readiness fails; default 1000. */
  maxEventLoopDelayMs?: number
  /** Heap in use (bytes) above which readiness fails; default 90% of the heap limit. */
  maxHeapUsedBytes?: number
  /** How often the pressure figures are sampled; default 1000 ms. */
  sampleIntervalMs?: number
}

const LIVE = '/health/live'
const READY = '/health/ready'
/** Seconds a load balancer should wait before probing again or retrying elsewhere. */
const RETRY_AFTER = 5

function unavailable (reply: FastifyReply, message: string) {
  const { body } = toErrorBody(new Overloaded(message))
  return reply.code(503).header('retry-after', String(RETRY_AFTER)).send(body)
}

const HealthReply = Type.Object({ status: Type.String() })

/**
 * SPEC 6 probes. Live: the process runs. Ready: accepting work, so 503 while draining or when the
 * event loop or heap says this replica is overloaded. Under pressure the chat route is not refused
 * here: it sheds load itself with its concurrency cap and our own 503; readiness only steers the LB.
 */
async function health (app: FastifyInstance, options: HealthOptions) {
  let draining = false

  // app.close() runs this first, before the listener closes and while in-flight requests finish.
  app.addHook('preClose', async () => {
    draining = true
    app.log.info('draining: readiness answers 503, no new connections, in-flight requests finish')
  })

  // Requests on a connection that was busy when the drain began still arrive: refuse them in our
  // error shape (Fastify's own closing answer has no `code`) and let the LB retry elsewhere.
  app.addHook('onRequest', async (request, reply) => {
    if (!draining || request.routeOptions.url === LIVE || request.routeOptions.url === READY) return
    return unavailable(reply, 'This replica is shutting down; please try again')
  })

  // server.close() only reaps connections idle at that moment; one that goes idle after its
  // in-flight answer would hold the drain open until keepAliveTimeout (72 s), past the grace period.
  app.addHook('onSend', async (_request, reply) => {
    if (draining) reply.header('connection', 'close')
  })

  // Encapsulated, so under-pressure's own request hook only ever sees the probes.
  await app.register(async function probes (scope) {
    await scope.register(underPressure, {
      maxEventLoopDelay: options.maxEventLoopDelayMs ?? 1000,
      maxHeapUsedBytes: options.maxHeapUsedBytes ?? Math.floor(getHeapStatistics().heap_size_limit * 0.9),
      sampleInterval: options.sampleIntervalMs ?? 1000,
      // Never refuse a probe from the hook: liveness must hold under load, readiness decides below.
      pressureHandler: () => undefined
    })

    const schema = { tags: ['operations'], response: { 200: HealthReply, 503: ErrorReply } }

    scope.get(LIVE, { schema: { ...schema, summary: 'Liveness: 200 while the process runs' } }, async () => ({ status: 'ok' }))

    scope.get(READY, { schema: { ...schema, summary: 'Readiness: 503 while draining or overloaded' } }, async (request, reply) => {
      if (draining) return unavailable(reply, 'This replica is shutting down')
      if (scope.isUnderPressure()) {
        const { eventLoopDelay, heapUsed } = scope.memoryUsage()
        request.log.warn({ eventLoopDelayMs: Math.round(eventLoopDelay), heapUsedBytes: heapUsed }, 'readiness 503: overloaded')
        return unavailable(reply, 'This replica is overloaded')
      }
      return { status: 'ready' }
    })
  })
}

export default fp(health, { name: 'health' })
