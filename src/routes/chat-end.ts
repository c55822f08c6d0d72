import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from 'typebox'
import { endChat, type ChatEndDeps } from '../chat/end.js'
import { ErrorReply } from '../shapes.js'
import { acceptJsonBodies, JSON_BODY_TYPES } from './json-bodies.js'
import { WidgetParams } from './chat-start.schema.js'

export const ChatEndBody = Type.Object({
  EndToken: Type.String({ minLength: 1, maxLength: 2048, description: 'data.endToken of the chat to end' })
}, { additionalProperties: false })
type ChatEndBody = Static<typeof ChatEndBody>

export interface ChatEndRouteOptions {
  deps: ChatEndDeps
  /** Ends per client per window; counted apart from chat starts. */
  rateLimit: { max: number; timeWindow: number }
}

/** POST /chat/end: the page ends its chat (its End button, or navigator.sendBeacon on pagehide). */
const chatEndRoute: FastifyPluginAsyncTypebox<ChatEndRouteOptions> = async (app, { deps, rateLimit }) => {
  acceptJsonBodies(app)
  const config = {
    rateLimit: { ...rateLimit, keyGenerator: (request: FastifyRequest) => `end:${request.widget?.id ?? 'default'}:${request.clientKey || 'unknown'}` }
  }
  const schema = {
    consumes: JSON_BODY_TYPES,
    body: ChatEndBody,
    response: { 204: Type.Null(), '4xx': ErrorReply, '5xx': ErrorReply }
  }
  async function end (request: FastifyRequest<{ Body: ChatEndBody }>, reply: FastifyReply) {
    const ended = await endChat(deps, request.body.EndToken, request.widget)
    request.logFields = { contactId: ended.contactId, ended: ended.outcome }
    return reply.code(204).send()
  }
  const description = 'Ends the chat its end token names (StopContact) and frees its place in the chat quota. 204 also when it had ended already; 403 END_TOKEN_REFUSED for a forged, expired or other widget\'s token. Accepts text/plain, so navigator.sendBeacon works.'
  app.post('/chat/end', { config, schema: { summary: 'End a chat', description, ...schema } }, end)
  app.post('/chat/end/:widget', { config, schema: { summary: 'End a chat of one widget profile', description, params: WidgetParams, ...schema } }, end)
}

export default chatEndRoute
