import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import type { AvailabilityPoller } from '../connect/availability.js'
import { AvailabilityNotConfigured, ChatClosed, RateLimited } from '../errors.js'
import { ErrorReply } from '../shapes.js'
import type { Widget } from '../widgets/index.js'
import { WidgetParams } from './chat-start.schema.js'

export const AVAILABILITY_WIDGET_ROUTE = '/chat/availability/:widget'

/**
 * Answers per client address and window: a page asks once per view and again now and then, and
 * an office behind one address has many pages open; well above the chat-start limit, and counted
 * apart from it.
 */
export const AVAILABILITY_RATE_LIMIT = { max: 300, timeWindow: 60_000 }

const AvailabilityReply = Type.Object({
  open: Type.Boolean({ description: 'whether starting a chat makes sense now' }),
  reason: Type.Union([Type.Literal('open'), Type.Literal('closed'), Type.Literal('no_agents'), Type.Literal('unknown')], {
    description: 'closed: outside opening hours (or the queue is disabled); no_agents: open, but no agent staffed; unknown: Connect has not answered lately, the other fields are the last known'
  }),
  agentsAvailable: Type.Optional(Type.Integer({ minimum: 0, description: 'agents free to take a chat of this queue' })),
  contactsInQueue: Type.Optional(Type.Integer({ minimum: 0, description: 'chats waiting in the queue' })),
  nextOpen: Type.Optional(Type.String({ description: 'when a closed queue opens again: ISO 8601 with the opening hours\' own offset' })),
  ageSeconds: Type.Optional(Type.Integer({ minimum: 0, description: 'with unknown: how old the values given are' }))
})

export interface AvailabilityRouteOptions {
  poller?: AvailabilityPoller
  /** Seconds a browser or cache may reuse an answer: the poller's refresh. */
  maxAgeSeconds: number
}

/**
 * The check the chat-start route makes before anything else: with refuseWhenClosed, a queue that is
 * closed (by its hours, or disabled) gets no chat, and Connect is not called. `unknown` does not
 * refuse: a poller that cannot reach Connect must not close the chat on its own.
 */
export function closedCheck (poller: AvailabilityPoller | undefined): (widget: Widget) => Promise<void> {
  return async (widget) => {
    if (!poller || !widget.availability?.refuseWhenClosed) return
    await poller.fresh()
    const answer = poller.availability(widget.availability.queue)
    if (answer.reason !== 'closed') return
    const opensAt = answer.nextOpen === undefined ? undefined : Date.parse(answer.nextOpen)
    throw new ChatClosed(answer.nextOpen === undefined ? 'Chat is closed right now' : `Chat is closed right now; it opens again at ${answer.nextOpen}`, {
      ...(answer.nextOpen !== undefined ? { nextOpen: answer.nextOpen } : {}),
      // Without a known opening time, an hour: hours are read again every few minutes.
      retryAfterSeconds: opensAt === undefined ? 3600 : Math.max(1, Math.ceil((opensAt - poller.now()) / 1000))
    })
  }
}

const availabilityRoute: FastifyPluginAsyncTypebox<AvailabilityRouteOptions> = async (app, { poller, maxAgeSeconds }) => {
  const rateLimit = {
    ...AVAILABILITY_RATE_LIMIT,
    // Counted apart from chat starts, which have a limit of their own on the same address.
    groupId: 'availability',
    errorResponseBuilder: (_request: FastifyRequest, context: { ttl: number; after: string }) => new RateLimited(
      `Too many availability requests from this address; retry in ${context.after}`,
      { retryAfterSeconds: Math.max(1, Math.ceil(context.ttl / 1000)) }
    )
  }
  const schema = { response: { 200: AvailabilityReply, '4xx': ErrorReply, '5xx': ErrorReply } }

  async function answer (request: FastifyRequest, reply: FastifyReply) {
    const queue = request.widget.availability?.queue
    if (!poller || !queue) throw new AvailabilityNotConfigured('No queue is configured for this chat widget\'s availability')
    reply.header('cache-control', `public, max-age=${maxAgeSeconds}`)
    await poller.fresh()
    return poller.availability(queue)
  }

  app.get('/chat/availability', {
    config: { rateLimit },
    schema: {
      summary: 'Whether chatting makes sense now',
      description: 'From the queue\'s opening hours and agents (CONNECT_QUEUE_ID), as last polled from Connect (once per AVAILABILITY_REFRESH for the deployment, not per request).',
      ...schema
    }
  }, answer)

  app.get(AVAILABILITY_WIDGET_ROUTE, {
    config: { rateLimit },
    schema: {
      summary: 'Whether chatting makes sense now, for one widget profile',
      description: 'As GET /chat/availability, for the queue of the named widget profile (its queueId).',
      params: WidgetParams,
      ...schema
    }
  }, answer)
}

export default availabilityRoute
