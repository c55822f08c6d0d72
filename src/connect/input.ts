import { createHash } from 'node:crypto'
import type { StartChatContactCommandInput } from '@aws-sdk/client-connect'
import type { SegmentAttributes } from '../contact-fields.js'

/** A chat start that has passed every check: what the browser may decide, nothing more. */
export interface ChatStartRequest {
  displayName: string
  attributes: Record<string, string>
  initialMessage?: { contentType: string; content: string }
  supportedMessagingContentTypes?: string[]
  chatDurationInMinutes?: number
  persistentChat?: { rehydrationType: 'ENTIRE_PAST_SESSION' | 'FROM_SEGMENT'; sourceContactId: string }
  /** From the widget profile, plus connect:CustomerAuthentication for a verified customer. */
  segmentAttributes?: SegmentAttributes
  /** From a verified customer token only. */
  customerId?: string
  /** From a related-chat token we issued only. */
  relatedContactId?: string
  disconnectOnCustomerExit?: Array<'AGENT'>
  responseMode?: 'COMPLETE' | 'INCREMENTAL'
  /** The caller's Idempotency-Key, if any. */
  idempotencyKey?: string
  /** Who is asking (customer subject or client address): part of the ClientToken, never sent otherwise. */
  caller?: string
}

/** Where one chat goes; `widget` names the profile it came through (none for the default profile). */
export interface ConnectTarget { instanceId: string; contactFlowId: string; widget?: string }

/**
 * The ClientToken for an Idempotency-Key. Connect returns the existing contact (with its
 * participant token) for a repeated ClientToken, so the key alone must not be enough: the token
 * also binds the caller and the request, so another caller who guessed or reused the key, or the
 * same caller with a different request, gets a chat of their own.
 */
export function clientTokenFor (request: ChatStartRequest, target: ConnectTarget): string | undefined {
  if (request.idempotencyKey === undefined) return undefined
  const { idempotencyKey, ...rest } = request
  // The widget too: the same key on two widgets with the same flow is two chats, never one.
  const bound = target.widget === undefined ? [idempotencyKey, target.instanceId, target.contactFlowId, rest] : [idempotencyKey, target.instanceId, target.contactFlowId, target.widget, rest]
  return createHash('sha256')
    .update(JSON.stringify(bound))
    .digest('hex')
}

/** The StartChatContact input: instance and flow from configuration, the rest from the request. */
export function buildStartChatInput (request: ChatStartRequest, target: ConnectTarget): StartChatContactCommandInput {
  const input: StartChatContactCommandInput = {
    InstanceId: target.instanceId,
    ContactFlowId: target.contactFlowId,
    ParticipantDetails: { DisplayName: request.displayName }
  }
  if (Object.keys(request.attributes).length > 0) input.Attributes = request.attributes
  if (request.initialMessage) {
    input.InitialMessage = { ContentType: request.initialMessage.contentType, Content: request.initialMessage.content }
  }
  if (request.supportedMessagingContentTypes) input.SupportedMessagingContentTypes = request.supportedMessagingContentTypes
  if (request.chatDurationInMinutes !== undefined) input.ChatDurationInMinutes = request.chatDurationInMinutes
  if (request.persistentChat) {
    input.PersistentChat = {
      RehydrationType: request.persistentChat.rehydrationType,
      SourceContactId: request.persistentChat.sourceContactId
    }
  }
  if (request.segmentAttributes && Object.keys(request.segmentAttributes).length > 0) input.SegmentAttributes = request.segmentAttributes
  if (request.customerId !== undefined) input.CustomerId = request.customerId
  if (request.relatedContactId !== undefined) input.RelatedContactId = request.relatedContactId
  if (request.disconnectOnCustomerExit) input.DisconnectOnCustomerExit = request.disconnectOnCustomerExit
  if (request.responseMode !== undefined) input.ParticipantConfiguration = { ResponseMode: request.responseMode }
  const token = clientTokenFor(request, target)
  if (token !== undefined) input.ClientToken = token
  return input
}
