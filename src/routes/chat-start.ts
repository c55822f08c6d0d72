import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import type { ChatStarter } from '../connect/chat-starter.js'
import type { ChatStartRequest } from '../connect/input.js'
import { displayNameProblem } from '../display-name.js'
import { ValidationFailed, type ProblemDetail } from '../errors.js'
import { WIDGET_ROUTE } from '../plugins/widget.js'
import { DISPLAY_NAME_MAX, MAX_ATTRIBUTE_BYTES } from '../shapes.js'
import type { Widget } from '../widgets/index.js'
import { ChatStartBody, ChatStartReply, ErrorReply, IdempotencyKeyHeader, WidgetParams } from './chat-start.schema.js'

export interface ChatStartRouteOptions {
  config: Config
  starter: ChatStarter
  /** Throws ChatClosed when the widget refuses chats while its queue is closed (REFUSE_WHEN_CLOSED). */
  whenClosed?: (widget: Widget) => void
}

const utf8 = (s: string) => Buffer.byteLength(s, 'utf8')

/** Checks the schema cannot express: trimmed length, the attribute allowlist and total size. */
function checkBody (body: ChatStartBody, widget: Widget, trusted: Record<string, string>): { displayName: string; attributes: Record<string, string> } {
  const problems: ProblemDetail[] = []
  const displayName = body.ParticipantDetails.DisplayName.trim()
  const nameProblem = displayName.length === 0 ? 'must not be blank' : displayNameProblem(displayName)
  if (nameProblem) problems.push({ path: 'ParticipantDetails.DisplayName', message: nameProblem })
  if ([...displayName].length > DISPLAY_NAME_MAX) {
    problems.push({ path: 'ParticipantDetails.DisplayName', message: `must be at most ${DISPLAY_NAME_MAX} characters` })
  }
  const attributes: Record<string, string> = Object.create(null)
  for (const [key, value] of Object.entries(body.Attributes ?? {})) {
    if (!widget.allowedAttributes.has(key)) {
      problems.push({ path: `Attributes.${key}`, message: 'is not an allowed attribute' })
    } else {
      attributes[key] = value
    }
  }
  // Trusted attributes from a verified customer token win over what the browser sent, and the
  // profile's own over both: a widget for brand A never starts a chat that says brand B.
  Object.assign(attributes, trusted, widget.attributes)
  let bytes = 0
  for (const [key, value] of Object.entries(attributes)) bytes += utf8(key) + utf8(value)
  if (bytes > MAX_ATTRIBUTE_BYTES) {
    problems.push({ path: 'Attributes', message: `must total at most ${MAX_ATTRIBUTE_BYTES} UTF-8 bytes (is ${bytes})` })
  }
  if (problems.length > 0) throw new ValidationFailed(problems)
  return { displayName, attributes: { ...attributes } }
}

const chatStartRoute: FastifyPluginAsyncTypebox<ChatStartRouteOptions> = async (app, { config, starter, whenClosed }) => {
  // The sample clients post JSON as text/plain or form-urlencoded (jQuery's default) to avoid a
  // CORS preflight; all three are parsed as JSON. Any other type is answered 415 by Fastify.
  app.removeContentTypeParser(['text/plain'])
  app.addContentTypeParser(['text/plain', 'application/x-www-form-urlencoded'], { parseAs: 'string' },
    app.getDefaultJsonParser('error', 'error'))

  const schema = {
    consumes: ['application/json', 'text/plain', 'application/x-www-form-urlencoded'],
    body: ChatStartBody,
    headers: IdempotencyKeyHeader,
    response: { 200: ChatStartReply, '4xx': ErrorReply, '5xx': ErrorReply }
  }
  // Per client address (or /64), shared through Redis: see plugins/rate-limit.ts. A widget with a
  // limit of its own is counted apart under it.
  const rateLimit = {
    max: (request: FastifyRequest) => request.widget.rateLimit?.max ?? config.RATE_LIMIT_MAX,
    timeWindow: (request: FastifyRequest) => request.widget.rateLimit?.windowMs ?? config.rateLimitWindowMs
  }

  async function startChat (request: FastifyRequest<{ Body: ChatStartBody; Headers: { 'idempotency-key'?: string } }>, reply: FastifyReply) {
    const startedAt = Date.now()
    // Resolved in onRequest: a reload meanwhile does not move this request to another profile.
    const { widget } = request
    const { trust } = widget
    whenClosed?.(widget)
    // A caller whose connection closes before the answer is let go: see ChatStarter.start.
    const caller = new AbortController()
    reply.raw.once('close', () => { if (!reply.raw.writableFinished) caller.abort() })
    const customer = await trust.customer(request.headers.authorization, request.log)
    const body = request.body
    const { displayName, attributes } = checkBody(body, widget, customer?.attributes ?? {})
    const persistentChat = await trust.resolvePersistentChat(body.PersistentChat, customer)
    const chatRequest: ChatStartRequest = {
      displayName,
      attributes,
      initialMessage: body.InitialMessage && { contentType: body.InitialMessage.ContentType, content: body.InitialMessage.Content },
      supportedMessagingContentTypes: body.SupportedMessagingContentTypes,
      chatDurationInMinutes: body.ChatDurationInMinutes ?? widget.chatDurationInMinutes,
      persistentChat: persistentChat && { rehydrationType: persistentChat.rehydrationType, sourceContactId: persistentChat.sourceContactId },
      idempotencyKey: request.headers['idempotency-key'],
      // The same key from someone else must never return this caller's chat.
      caller: customer?.sub !== undefined ? `customer:${customer.sub}` : `address:${request.clientKey}`
    }
    let chat
    try {
      chat = await starter.start(chatRequest, widget.target, startedAt, caller.signal)
    } catch (err) {
      await persistentChat?.release()
      throw err
    }
    await persistentChat?.spend()
    const resumeToken = await trust.issueResumeToken(chat, persistentChat, customer)
    request.logFields = { contactId: chat.contactId, persistent: persistentChat !== undefined }
    return {
      data: {
        startChatResult: {
          ContactId: chat.contactId,
          ParticipantId: chat.participantId,
          ParticipantToken: chat.participantToken,
          ...(chat.continuedFromContactId ? { ContinuedFromContactId: chat.continuedFromContactId } : {})
        },
        featurePermissions: widget.featurePermissions,
        ...(resumeToken ? { resumeToken } : {})
      }
    }
  }

  app.post('/chat/start', {
    config: { rateLimit },
    schema: {
      summary: 'Start a chat on Amazon Connect',
      description: 'Validates the request, adds the configured instance and contact flow, and calls StartChatContact.',
      ...schema
    }
  }, startChat)

  app.post(WIDGET_ROUTE, {
    config: { rateLimit },
    schema: {
      summary: 'Start a chat on Amazon Connect for one widget profile',
      description: 'As POST /chat/start, with the contact flow, origins, attributes and trust of the named widget profile (WIDGETS_FILE). An unknown widget gets 404 WIDGET_NOT_FOUND.',
      params: WidgetParams,
      ...schema
    }
  }, startChat)
}

export default chatStartRoute
