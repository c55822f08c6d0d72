import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { RouteNotFound } from '../errors.js'
import { ErrorReply } from '../shapes.js'
import { WidgetParams } from './chat-start.schema.js'

/** The ALTCHA challenge as the ALTCHA widget reads it: parameters (algorithm, nonce, salt, cost, …) and their signature. */
const ChallengeReply = Type.Object({
  parameters: Type.Object({}, { additionalProperties: true }),
  signature: Type.Optional(Type.String())
}, { additionalProperties: true })

export interface ChatChallengeRouteOptions {
  /** Challenges per client per window. */
  rateLimit: { max: number; timeWindow: number }
}

/**
 * GET /chat/challenge: a proof-of-work challenge in the ALTCHA format, for widgets whose human
 * check is `pow` (the ALTCHA widget's `challengeurl`). Signed and expiring; each solution opens one chat.
 */
const chatChallengeRoute: FastifyPluginAsyncTypebox<ChatChallengeRouteOptions> = async (app, { rateLimit }) => {
  const config = {
    rateLimit: { ...rateLimit, keyGenerator: (request: FastifyRequest) => `challenge:${request.widget?.id ?? 'default'}:${request.clientKey || 'unknown'}` }
  }
  async function challenge (request: FastifyRequest, reply: FastifyReply) {
    const check = request.widget.humanCheck
    if (check?.kind !== 'pow') throw new RouteNotFound('This chat widget asks for no proof-of-work check')
    reply.header('cache-control', 'no-store')
    return check.challenge()
  }
  const schema = { response: { 200: ChallengeReply, '4xx': ErrorReply, '5xx': ErrorReply } }
  const description = 'An ALTCHA challenge (signed, expiring, single-use). Solve it and send the payload in the Human-Check header of POST /chat/start. 404 when the widget\'s human check is not pow.'
  app.get('/chat/challenge', { config, schema: { summary: 'A human-check challenge', description, ...schema } }, challenge)
  app.get('/chat/challenge/:widget', { config, schema: { summary: 'A human-check challenge for one widget profile', description, params: WidgetParams, ...schema } }, challenge)
}

export default chatChallengeRoute
