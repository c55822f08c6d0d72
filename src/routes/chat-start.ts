import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { startChat, type ChatStartDeps } from '../chat/start.js'
import { systemClock, type Clock } from '../clock.js'
import { acceptJsonBodies, JSON_BODY_TYPES } from './json-bodies.js'
import { ChatStartBody, ChatStartHeaders, ChatStartReply, ErrorReply, WidgetParams } from './chat-start.schema.js'

/** One widget profile's chat starts; its id is resolved by the widget plugin from the `:widget` segment. */
export const WIDGET_ROUTE = '/chat/start/:widget'

export interface ChatStartRouteOptions {
  /** Per client, for profiles without a limit of their own. */
  rateLimit: { max: number; windowMs: number }
  deps: ChatStartDeps
  /** Where a start's deadline counts from: the starter's clock, so both read the same time. */
  clock?: Clock
}

const chatStartRoute: FastifyPluginAsyncTypebox<ChatStartRouteOptions> = async (app, { rateLimit: defaultLimit, deps, clock = systemClock }) => {
  acceptJsonBodies(app)

  const schema = {
    consumes: JSON_BODY_TYPES,
    body: ChatStartBody,
    headers: ChatStartHeaders,
    response: { 200: ChatStartReply, '4xx': ErrorReply, '5xx': ErrorReply }
  }
  // Per client address (or /64), shared through Redis: see plugins/rate-limit.ts. A widget with a
  // limit of its own is counted apart under it.
  const rateLimit = {
    max: (request: FastifyRequest) => request.widget.rateLimit?.max ?? defaultLimit.max,
    timeWindow: (request: FastifyRequest) => request.widget.rateLimit?.windowMs ?? defaultLimit.windowMs
  }

  async function startChatRoute (request: FastifyRequest<{ Body: ChatStartBody; Headers: ChatStartHeaders }>, reply: FastifyReply) {
    const startedAt = clock.now()
    // A caller whose connection closes before the answer is let go: see ChatStarter.start.
    const caller = new AbortController()
    reply.raw.once('close', () => { if (!reply.raw.writableFinished) caller.abort() })
    const { headers } = request
    const started = await startChat(deps, request.body, {
      // Resolved in onRequest: a reload meanwhile does not move this request to another profile.
      widget: request.widget,
      authorization: headers.authorization,
      idempotencyKey: headers['idempotency-key'],
      humanCheckProof: headers['human-check'],
      clientKey: request.clientKey,
      remoteIp: request.ip,
      origin: headers.origin,
      log: request.log,
      signal: caller.signal,
      startedAt
    })
    request.logFields = { contactId: started.contactId, persistent: started.persistent, ...(started.related ? { related: true } : {}) }
    return { data: started.answer }
  }

  app.post('/chat/start', {
    config: { rateLimit },
    schema: {
      summary: 'Start a chat on Amazon Connect',
      description: 'Validates the request, adds the configured instance and contact flow, and calls StartChatContact.',
      ...schema
    }
  }, startChatRoute)

  app.post(WIDGET_ROUTE, {
    config: { rateLimit },
    schema: {
      summary: 'Start a chat on Amazon Connect for one widget profile',
      description: 'As POST /chat/start, with the contact flow, origins, attributes and trust of the named widget profile (WIDGETS_FILE). An unknown widget gets 404 WIDGET_NOT_FOUND.',
      params: WidgetParams,
      ...schema
    }
  }, startChatRoute)
}

export default chatStartRoute
