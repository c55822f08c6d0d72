import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { getHeapStatistics } from 'node:v8'
import { Type } from 'typebox'
import { NotReady, Overloaded } from '../errors.js'
import type { ServiceInfo } from '../service-info.js'
import { ErrorReply } from '../shapes.js'

export interface HealthOptions {
  /** Mean event-loop delay (ms) above which readiness fails; default 1000. */
  maxEventLoopDelayMs?: number
  /** Heap in use (bytes) above which readiness fails; default 90% of the heap limit. */
  maxHeapUsedBytes?: number
  /** How often the pressure figures are sampled; default 1000 ms. */
  sampleIntervalMs?: number
  /** A sample failed (it is skipped; the last good figures stand). */
  onSampleError?: (err: unknown) => void
  /** Why this replica cannot serve yet (no AWS credentials), or undefined when it can. */
  notReady?: () => string | undefined
  /** The running build, shown on /health/live. */
  service?: ServiceInfo
  /**
   * false: no pressure sampling, and readiness never says overloaded. Serverless, where an
   * environment is frozen between requests and the first timer after a thaw is late by the whole
   * freeze: every request would find the event loop "delayed" by minutes.
   */
  pressure?: boolean
}

const LIVE = '/health/live'
const READY = '/health/ready'
/** Seconds a load balancer should wait before probing again or retrying elsewhere. */
const RETRY_AFTER = 5

const UNDER_NO_PRESSURE = { eventLoopDelayMs: 0, heapUsedBytes: 0, overloaded: false }

const unavailable = (message: string) => new Overloaded(message, { retryAfterSeconds: RETRY_AFTER })

const HealthReply = Type.Object({ status: Type.String() })
const LiveReply = Type.Object({ status: Type.String(), version: Type.Optional(Type.String()), commit: Type.Optional(Type.String()) })

/**
 * The probes. Live: the process runs. Ready: accepting work, so 503 until the AWS credentials have
 * resolved, while draining, or when the event loop or heap says this replica is overloaded. Under pressure the chat route is not refused
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
  app.addHook('onRequest', (request, _reply, done) => {
    if (!draining || request.routeOptions.url === LIVE || request.routeOptions.url === READY) done()
    else done(unavailable('This replica is shutting down; please try again'))
  })

  // server.close() only reaps connections idle at that moment; one that goes idle after its
  // in-flight answer would hold the drain open until keepAliveTimeout (72 s), past the grace period.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (draining) reply.header('connection', 'close')
    done(null, payload)
  })

  const pressure = options.pressure === false ? undefined : pressureSampler(options)
  app.addHook('onClose', async () => pressure?.stop())

  const schema = { tags: ['operations'], response: { 200: HealthReply, 503: ErrorReply } }

  // Which build answers: after a deploy, each replica says whether it runs the new one.
  const live = { status: 'ok', ...options.service }
  app.get(LIVE, { schema: { ...schema, response: { ...schema.response, 200: LiveReply }, summary: 'Liveness: 200 while the process runs, with the version and commit it runs' } }, async () => live)

  app.get(READY, { schema: { ...schema, summary: 'Readiness: 503 until the AWS credentials resolve, while draining or overloaded' } }, async (request) => {
    if (draining) throw unavailable('This replica is shutting down')
    // The reason (the credential chain's message) is logged by whoever watches it; a probe gets ours.
    if (options.notReady?.() !== undefined) throw new NotReady('This replica cannot call Amazon Connect yet', { retryAfterSeconds: RETRY_AFTER })
    const { eventLoopDelayMs, heapUsedBytes, overloaded } = pressure?.current() ?? UNDER_NO_PRESSURE
    if (overloaded) {
      request.log.warn({ eventLoopDelayMs: Math.round(eventLoopDelayMs), heapUsedBytes }, 'readiness 503: overloaded')
      throw unavailable('This replica is overloaded')
    }
    return { status: 'ready' }
  })
}

/**
 * Event-loop delay and heap in use, sampled on a timer. Both readings need no file descriptor
 * (@fastify/under-pressure also reads process.memoryUsage(), which throws EMFILE when clients have
 * taken every descriptor, from a timer where nothing can catch it), and a failed sample is
 * reported and skipped, never thrown.
 */
function pressureSampler (options: HealthOptions) {
  const maxDelayMs = options.maxEventLoopDelayMs ?? 1000
  const maxHeap = options.maxHeapUsedBytes ?? Math.floor(getHeapStatistics().heap_size_limit * 0.9)
  const histogram = monitorEventLoopDelay({ resolution: 10 })
  histogram.enable()
  let eventLoopDelayMs = 0
  let heapUsedBytes = 0
  const timer = setInterval(() => {
    try {
      eventLoopDelayMs = Number.isFinite(histogram.mean) ? histogram.mean / 1e6 : 0
      histogram.reset()
      heapUsedBytes = getHeapStatistics().used_heap_size
    } catch (err) {
      options.onSampleError?.(err)
    }
  }, options.sampleIntervalMs ?? 1000).unref()
  return {
    current: () => ({ eventLoopDelayMs, heapUsedBytes, overloaded: eventLoopDelayMs > maxDelayMs || heapUsedBytes > maxHeap }),
    stop () { clearInterval(timer); histogram.disable() }
  }
}

export default fp(health, { name: 'health' })
