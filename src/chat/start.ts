import type { ChatStarter } from '../connect/chat-starter.js'
import type { ChatStartRequest } from '../connect/input.js'
import { displayNameProblem } from '../display-name.js'
import { GatewayError, ValidationFailed, type ProblemDetail } from '../errors.js'
import { DISPLAY_NAME_MAX, MAX_ATTRIBUTE_BYTES } from '../shapes.js'
import type { EndTokens } from '../trust/end-token.js'
import type { PersistentChatAsk, TrustLog } from '../trust/index.js'
import type { Widget } from '../widgets/index.js'
import type { Caller } from './live-chats.js'
import { contentTypes, customerFields, segmentAttributes } from './profile-fields.js'
import type { ChatQuota } from './quota.js'

/** What a caller may ask for: the body's fields, already past the schema. */
export interface ChatAsk {
  ParticipantDetails: { DisplayName: string }
  Attributes?: Record<string, string>
  InitialMessage?: { ContentType: string; Content: string }
  SupportedMessagingContentTypes?: string[]
  ChatDurationInMinutes?: number
  PersistentChat?: PersistentChatAsk
  ParticipantConfiguration?: { ResponseMode?: 'COMPLETE' | 'INCREMENTAL' }
  /** data.relatedToken of an earlier chat: the new chat is related to it. */
  RelatedContactToken?: string
}

/** Everything one start knows about its request besides the body. */
export interface StartContext {
  widget: Widget
  authorization?: string
  idempotencyKey?: string
  /** The Human-Check header. */
  humanCheckProof?: string
  /** The caller's address, normalised (one key per client). */
  clientKey: string
  /** The caller's address as the provider of a human check should see it. */
  remoteIp: string
  origin?: string
  log: TrustLog
  /** Aborts when the caller goes away. */
  signal: AbortSignal
  startedAt: number
}

export interface ChatStartDeps {
  starter: ChatStarter
  quota: ChatQuota
  endTokens: EndTokens
  /** The longest chats, in minutes, for everyone and for anonymous callers. */
  maxDuration: { all: number; anonymous: number }
  /** Throws ChatClosed when the widget refuses chats while its queue is closed (REFUSE_WHEN_CLOSED). */
  whenClosed?: (widget: Widget) => void | Promise<void>
  /** Told of each refusal this use case makes before Connect is called. */
  onRefused?: (error: GatewayError, widget: Widget) => void
}

export interface StartedChatAnswer {
  startChatResult: { ContactId: string; ParticipantId: string; ParticipantToken: string; ContinuedFromContactId?: string }
  featurePermissions: Widget['featurePermissions']
  resumeToken?: string
  relatedToken?: string
  endToken: string
}

const utf8 = (s: string) => Buffer.byteLength(s, 'utf8')

/** Checks the schema cannot express: trimmed length, the attribute allowlist and total size, what the profile allows. */
function checkAsk (ask: ChatAsk, widget: Widget, trusted: Record<string, string>): { displayName: string; attributes: Record<string, string> } {
  const problems: ProblemDetail[] = []
  const displayName = ask.ParticipantDetails.DisplayName.trim()
  const nameProblem = displayName.length === 0 ? 'must not be blank' : displayNameProblem(displayName)
  if (nameProblem) problems.push({ path: 'ParticipantDetails.DisplayName', message: nameProblem })
  if ([...displayName].length > DISPLAY_NAME_MAX) {
    problems.push({ path: 'ParticipantDetails.DisplayName', message: `must be at most ${DISPLAY_NAME_MAX} characters` })
  }
  const attributes: Record<string, string> = Object.create(null)
  for (const [key, value] of Object.entries(ask.Attributes ?? {})) {
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
  // Streamed replies are the profile's to turn on; anyone may ask for whole ones.
  if (ask.ParticipantConfiguration?.ResponseMode === 'INCREMENTAL' && widget.contactFields.responseMode !== 'INCREMENTAL') {
    problems.push({ path: 'ParticipantConfiguration.ResponseMode', message: 'may only be COMPLETE on this widget (INCREMENTAL is set by the widget profile)' })
  }
  // Connect refuses the two together; saying so here spends neither token.
  if (ask.RelatedContactToken !== undefined && ask.PersistentChat !== undefined) {
    problems.push({ path: 'RelatedContactToken', message: 'cannot be combined with PersistentChat' })
  }
  if (problems.length > 0) throw new ValidationFailed(problems)
  return { displayName, attributes: { ...attributes } }
}

/**
 * The chat's lifetime is the server's: a request may ask for less than the cap, never more, and a
 * chat always goes out with an explicit duration, so Connect's 25-hour default never applies.
 */
export function chatDuration (asked: number | undefined, widget: Widget, anonymous: boolean, max: ChatStartDeps['maxDuration']): number {
  let cap = Math.min(max.all, widget.chatDurationInMinutes ?? Infinity)
  if (anonymous) cap = Math.min(cap, max.anonymous)
  return Math.min(asked ?? cap, cap)
}

/**
 * Starts one chat: who the caller is, what they may ask, a human check where one is due, the resume
 * and related-chat holds, a seat under the chat quota, the start itself, then the tokens that
 * continue, relate to or end it. Whatever fails gives back what was taken before it (holds, seat).
 */
export async function startChat (deps: ChatStartDeps, ask: ChatAsk, ctx: StartContext): Promise<{ answer: StartedChatAnswer; contactId: string; persistent: boolean; related: boolean }> {
  const { widget } = ctx
  /** The quota's and the human check's refusals are counted here; the starter counts its own outcomes. */
  const guarded = async <T>(step: () => Promise<T>): Promise<T> => {
    try {
      return await step()
    } catch (err) {
      if (err instanceof GatewayError) deps.onRefused?.(err, widget)
      throw err
    }
  }
  const { trust } = widget
  // A closed queue refuses before anything else is asked of the caller.
  await deps.whenClosed?.(widget)
  const customer = await trust.customer(ctx.authorization, ctx.log)
  const fromCustomer = customerFields(customer, widget)
  const { displayName, attributes } = checkAsk(ask, widget, fromCustomer.attributes)
  const caller: Caller = customer?.sub !== undefined
    ? { key: `customer:${customer.sub}`, anonymous: false }
    : { key: `address:${ctx.clientKey}`, anonymous: true }
  const check = widget.humanCheck
  if (caller.anonymous && check && (check.when === 'always' || await deps.quota.busy())) {
    await guarded(() => check.verify(ctx.humanCheckProof, { origin: ctx.origin, remoteIp: ctx.remoteIp, isOriginAllowed: widget.isOriginAllowed }))
  }
  const persistentChat = await trust.resolvePersistentChat(ask.PersistentChat, customer)
  let related
  let seat
  try {
    related = await trust.resolveRelatedChat(ask.RelatedContactToken, customer)
    seat = await guarded(() => deps.quota.take(caller))
  } catch (err) {
    await Promise.all([persistentChat?.release(), related?.release()])
    throw err
  }
  const durationMinutes = chatDuration(ask.ChatDurationInMinutes, widget, caller.anonymous, deps.maxDuration)
  const segments = segmentAttributes(widget, fromCustomer.authenticated)
  const { disconnectOnCustomerExit } = widget.contactFields
  const responseMode = ask.ParticipantConfiguration?.ResponseMode ?? widget.contactFields.responseMode
  const request: ChatStartRequest = {
    displayName,
    attributes,
    initialMessage: ask.InitialMessage && { contentType: ask.InitialMessage.ContentType, content: ask.InitialMessage.Content },
    supportedMessagingContentTypes: contentTypes(ask.SupportedMessagingContentTypes, segments),
    chatDurationInMinutes: durationMinutes,
    persistentChat: persistentChat && { rehydrationType: persistentChat.rehydrationType, sourceContactId: persistentChat.sourceContactId },
    ...(segments ? { segmentAttributes: segments } : {}),
    ...(fromCustomer.customerId !== undefined ? { customerId: fromCustomer.customerId } : {}),
    ...(related ? { relatedContactId: related.contactId } : {}),
    ...(disconnectOnCustomerExit ? { disconnectOnCustomerExit } : {}),
    ...(responseMode ? { responseMode } : {}),
    idempotencyKey: ctx.idempotencyKey,
    // The same key from someone else must never return this caller's chat.
    caller: caller.key
  }
  let chat
  try {
    chat = await deps.starter.start(request, widget.target, ctx.startedAt, ctx.signal)
  } catch (err) {
    await Promise.all([seat.release(), persistentChat?.release(), related?.release()])
    throw err
  }
  await Promise.all([
    seat.confirm({ instanceId: widget.target.instanceId, contactId: chat.contactId }, durationMinutes),
    persistentChat?.spend(),
    related?.spend()
  ])
  const resumeToken = await trust.issueResumeToken(chat, persistentChat, customer)
  const relatedToken = trust.issueRelatedToken(chat, customer)
  const endToken = deps.endTokens.issue({ contactId: chat.contactId, ...(widget.named !== undefined ? { widget: widget.named } : {}) }, durationMinutes * 60)
  return {
    contactId: chat.contactId,
    persistent: persistentChat !== undefined,
    related: related !== undefined,
    answer: {
      startChatResult: {
        ContactId: chat.contactId,
        ParticipantId: chat.participantId,
        ParticipantToken: chat.participantToken,
        ...(chat.continuedFromContactId ? { ContinuedFromContactId: chat.continuedFromContactId } : {})
      },
      featurePermissions: widget.featurePermissions,
      ...(resumeToken ? { resumeToken } : {}),
      ...(relatedToken ? { relatedToken } : {}),
      endToken
    }
  }
}
