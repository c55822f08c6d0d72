import type { ConnectClientConfig } from '@aws-sdk/client-connect'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { AvailabilityPoller, queueKey, type AvailabilityShare, type QueueRef } from '../connect/availability.js'
import { createConnectClient } from '../connect/client.js'
import { availabilityObserver } from '../metrics.js'
import type { Widgets } from '../widgets/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The availability poller; undefined when no profile names a queue. Tests drive its tick(). */
    availability: AvailabilityPoller | undefined
  }
}

export interface AvailabilityPluginOptions {
  /** The poller's own client: AWS_REGION, and CONNECT_ATTEMPT_TIMEOUT_MS per attempt. */
  region: string
  attemptTimeoutMs: number
  /** How often one replica asks Connect (AVAILABILITY_REFRESH). */
  refreshMs: number
  /** A poller even when no profile names a queue yet (a WIDGETS_FILE reload may name one). */
  mayWatch: boolean
  widgets: Widgets
  /** The deployment's lock and last state; this replica polls on its own without it. */
  share?: AvailabilityShare
  /** The chat-start client's credentials provider, so both resolve credentials once. */
  credentials: ConnectClientConfig['credentials']
  /** The same SDK overrides as the chat-start client (endpoint, credentials in tests). */
  overrides?: Partial<ConnectClientConfig>
  /** For tests: the poller's clock. */
  now?: () => number
  /** No timer: the requests that read availability refresh it when due (serverless, see app.ts). */
  refreshOnRequest?: boolean
}

/** Every distinct queue a profile reports on, the default profile's first. */
export function watchedQueues (widgets: Widgets): QueueRef[] {
  const queues = new Map<string, QueueRef>()
  for (const widget of [widgets.default, ...widgets.ids().map((id) => widgets.get(id))]) {
    const queue = widget?.availability?.queue
    if (queue) queues.set(queueKey(queue), queue)
  }
  return [...queues.values()]
}

/**
 * The poller behind GET /chat/availability (the route, in routes/, answers from it). The poller has a client of its own (two attempts, two
 * sockets): its calls must neither count as chat-start attempts in the metrics nor take the
 * chat starts' sockets. Without any queue configured (and no WIDGETS_FILE that may name one on a
 * reload) there is no poller, and the routes answer 404 AVAILABILITY_NOT_CONFIGURED.
 */
async function availabilityPlugin (app: FastifyInstance, options: AvailabilityPluginOptions) {
  const { widgets } = options
  let poller: AvailabilityPoller | undefined
  if (watchedQueues(widgets).length > 0 || options.mayWatch) {
    const client = createConnectClient({
      region: options.region,
      maxAttempts: 2,
      attemptTimeoutMs: options.attemptTimeoutMs,
      maxSockets: 2,
      overrides: { ...options.overrides, credentials: options.credentials }
    })
    poller = new AvailabilityPoller({
      client,
      queues: () => watchedQueues(widgets),
      refreshMs: options.refreshMs,
      ...(options.share ? { share: options.share } : {}),
      ...(options.now ? { now: options.now } : {}),
      // One attempt's deadline: a first request in a new environment gets an answer, not `unknown`.
      ...(options.refreshOnRequest ? { refreshOnRequest: { waitMs: options.attemptTimeoutMs } } : {}),
      events: { ...availabilityObserver(app.metrics, app.log), error: (err) => app.backgroundError('availability', err) }
    })
    const running = poller
    app.addHook('onClose', async () => {
      await running.close()
      client.destroy()
    })
    // Not awaited: start-up must not wait on Connect; answers say unknown until the first poll.
    if (!options.refreshOnRequest) void poller.start()
  }
  app.decorate('availability', poller)
}

export default fp(availabilityPlugin, { name: 'availability', decorators: { fastify: ['metrics', 'backgroundError'] } })
