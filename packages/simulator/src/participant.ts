/**
 * Simulator of Amazon Connect's Participant Service (REST-JSON under `/participant/*`, plus the
 * chat WebSocket), mounted on the StartChatContact simulator's server and sharing its contacts: a
 * ParticipantToken works only for its own chat and only while that chat is active.
 *
 * Close enough to the real service that the unmodified amazon-connect-chatjs holds a conversation
 * through it and `@aws-sdk/client-connectparticipant` parses its answers and errors.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { randomBytes, randomUUID } from 'node:crypto'
import type { SimulatedContact } from './contact.js'
import { systemClock, type Clock, type Timer } from './clock.js'
import { Delays } from './delays.js'
import { ScriptedAgent, type AgentOptions, type MessageType } from './agent.js'
import { pageTranscript, TranscriptQueryError, type ChatItem, type ParticipantRole, type TranscriptQuery } from './transcript.js'
import { isObject, sendJson } from './start-chat-wire.js'
import { SocketHub, type ChatSocket } from './websocket.js'

export type { ChatItem } from './transcript.js'

export const CONTENT_TYPE = {
  typing: 'application/vnd.amazonaws.connect.event.typing',
  joined: 'application/vnd.amazonaws.connect.event.participant.joined',
  left: 'application/vnd.amazonaws.connect.event.participant.left',
  ended: 'application/vnd.amazonaws.connect.event.chat.ended',
  acknowledged: 'application/vnd.amazonaws.connect.event.connection.acknowledged',
  read: 'application/vnd.amazonaws.connect.event.message.read',
  delivered: 'application/vnd.amazonaws.connect.event.message.delivered'
} as const

/** SendMessage content types and their documented maximum length. */
const MESSAGE_TYPES: Record<string, number> = {
  'text/plain': 1024,
  'text/markdown': 1024,
  'application/json': 12_000,
  'application/vnd.amazonaws.connect.message.interactive.response': 12_288
}
const EVENT_TYPES = new Set<string>([CONTENT_TYPE.typing, CONTENT_TYPE.acknowledged, CONTENT_TYPE.read, CONTENT_TYPE.delivered])
const CONNECTION_TYPES = new Set(['WEBSOCKET', 'CONNECTION_CREDENTIALS', 'WEBRTC_CONNECTION'])

export type ParticipantErrorType =
  | 'AccessDeniedException'
  | 'ValidationException'
  | 'ThrottlingException'
  | 'InternalServerException'
  | 'ServiceQuotaExceededException'
  | 'ConflictException'

const ERROR_STATUS: Record<ParticipantErrorType, number> = {
  AccessDeniedException: 403,
  ValidationException: 400,
  ThrottlingException: 429,
  InternalServerException: 500,
  ServiceQuotaExceededException: 402,
  ConflictException: 409
}

/** Faults a widget developer or a test can ask for; `contactId` limits one to a chat. */
export type ParticipantFault =
  /** Cut the chat WebSockets without a closing handshake; chatjs must reconnect. */
  | { type: 'dropWebSocket'; contactId?: string }
  /** Refuse the next `count` (default 1) SendMessage calls with `errorType` (default InternalServerException). */
  | { type: 'rejectMessage'; contactId?: string; errorType?: ParticipantErrorType; count?: number }
  /** Expire every ConnectionToken issued so far: calls using them get AccessDeniedException. */
  | { type: 'expireConnectionToken'; contactId?: string }

export interface ParticipantOptions {
  /** The simulated agent, or false for none (then only `agentSays`/`agentEnds` speak). */
  agent?: AgentOptions | false
  /**
   * The base URL browsers reach this simulator at, for the WebSocket URL. Default: the listening
   * port on 127.0.0.1 (chatjs accepts only `wss://` or `ws://127.0.0.1:` URLs).
   */
  publicUrl?: string
  /** Lifetime of a ConnectionToken; default 24 hours. */
  connectionTokenTtlMs?: number
  /** Time to open a WebSocket URL once issued; default 100 s, as Connect documents. */
  websocketUrlTtlMs?: number
}

export interface ParticipantStats {
  connectionsCreated: number
  websocketsOpened: number
  websocketsOpen: number
  messages: number
  events: number
  customerTyping: number
  refused: number
  faulted: number
}

export interface ParticipantSimulator {
  fault (fault: ParticipantFault): void
  /** The agent writes now (the simulated agent, or a test speaking for it); text/plain by default. */
  agentSays (contactId: string, text: string, contentType?: MessageType): void
  /** The agent leaves and the chat ends. */
  agentEnds (contactId: string): void
  /** What the participants of this contact see: its chat, with the past ones for persistent chat. */
  transcript (contactId: string): ChatItem[]
  openSockets (contactId?: string): number
  stats (): ParticipantStats
}

/** The StartChatContact simulator's side of the shared contact state. */
export interface ContactSource {
  readonly contacts: ReadonlyMap<string, SimulatedContact>
  endChat (contactId: string): void
}

interface ApiError { status: number; type: string; message: string }

class ParticipantError extends Error {
  constructor (readonly type: ParticipantErrorType, message: string) {
    super(message)
  }
}

const denied = () => new ParticipantError('AccessDeniedException', 'You do not have sufficient access to perform this action.')
const invalid = (message: string) => new ParticipantError('ValidationException', message)

interface Chat {
  contact: SimulatedContact
  customerName: string
  agentId: string
  agentName: string
  items: ChatItem[]
  ended: boolean
  /** The customer is connected (ConnectParticipant or a subscribed WebSocket): the agent was called. */
  connected: boolean
  /** SendMessage ClientTokens already answered, for idempotent retries. */
  sentByToken: Map<string, { Id: string; AbsoluteTime: string }>
  endTimer?: Timer
}

interface Grant { contactId: string; participantId: string; expiresAt: number }

type JsonObject = Record<string, unknown>

const MAX_BODY_BYTES = 1024 * 1024
const MAX_TIMER_MS = 2 ** 31 - 1

export class ParticipantService implements ParticipantSimulator {
  private readonly chats = new Map<string, Chat>()
  private readonly byParticipantToken = new Map<string, string>()
  private readonly connectionTokens = new Map<string, Grant>()
  private readonly websocketTokens = new Map<string, Grant>()
  private readonly rejections: { contactId?: string; errorType: ParticipantErrorType; left: number }[] = []
  private readonly delays: Delays
  private readonly hub: SocketHub
  private readonly agent: ScriptedAgent | undefined
  private wsBase = ''
  private counters = ParticipantService.zeroCounters()

  constructor (
    private readonly source: ContactSource,
    private readonly options: ParticipantOptions = {},
    private readonly log?: (line: string) => void,
    private readonly clock: Clock = systemClock
  ) {
    this.delays = new Delays(clock)
    this.hub = new SocketHub({
      resolve: (token) => this.resolveWebsocketToken(token),
      subscribed: (socket) => this.onSubscribed(socket)
    })
    this.agent = options.agent === false
      ? undefined
      : new ScriptedAgent({
          join: (contactId, name) => this.agentJoins(contactId, name),
          typing: (contactId) => this.agentTyping(contactId),
          say: (contactId, text, contentType) => this.agentSays(contactId, text, contentType),
          end: (contactId) => this.agentEnds(contactId),
          isActive: (contactId) => this.isActive(contactId),
          sleep: (ms) => this.delays.sleep(ms)
        }, options.agent)
  }

  private static zeroCounters (): Omit<ParticipantStats, 'websocketsOpened' | 'websocketsOpen'> {
    return { connectionsCreated: 0, messages: 0, events: 0, customerTyping: 0, refused: 0, faulted: 0 }
  }

  /** Called once the server listens: where browsers open the WebSocket. */
  listening (address: string, port: number): void {
    if (this.options.publicUrl) {
      this.wsBase = this.options.publicUrl.replace(/^http/, 'ws').replace(/\/+$/, '')
      return
    }
    const loopback = ['0.0.0.0', '::', '127.0.0.1', '::1', '::ffff:127.0.0.1'].includes(address)
    this.wsBase = `ws://${loopback ? '127.0.0.1' : address.includes(':') ? `[${address}]` : address}:${port}`
  }

  // --- hooks from the StartChatContact simulator -----------------------------------------------

  contactCreated (contact: SimulatedContact): void {
    this.byParticipantToken.set(contact.participantToken, contact.contactId)
  }

  /** The contact ended outside this service (its duration ran out, or a test ended it). */
  contactEnded (contactId: string): void {
    const chat = this.chats.get(contactId)
    if (chat && !chat.ended) this.finish(chat, 'SYSTEM')
  }

  /** The Connect side forgot these ended contacts: their transcripts and tokens go too. */
  contactsForgotten (contacts: SimulatedContact[]): void {
    const ids = new Set(contacts.map((c) => c.contactId))
    for (const contact of contacts) {
      this.byParticipantToken.delete(contact.participantToken)
      const chat = this.chats.get(contact.contactId)
      this.clock.clearTimeout(chat?.endTimer)
      this.chats.delete(contact.contactId)
    }
    for (const tokens of [this.connectionTokens, this.websocketTokens]) {
      for (const [token, grant] of tokens) if (ids.has(grant.contactId)) tokens.delete(token)
    }
  }

  // --- public API ------------------------------------------------------------------------------

  fault (fault: ParticipantFault): void {
    this.counters.faulted++
    switch (fault.type) {
      case 'dropWebSocket':
        this.hub.drop(fault.contactId)
        return
      case 'rejectMessage':
        this.rejections.push({ contactId: fault.contactId, errorType: fault.errorType ?? 'InternalServerException', left: fault.count ?? 1 })
        return
      case 'expireConnectionToken':
        for (const grant of this.connectionTokens.values()) {
          if (fault.contactId === undefined || grant.contactId === fault.contactId) grant.expiresAt = 0
        }
    }
  }

  agentSays (contactId: string, text: string, contentType: MessageType = 'text/plain'): void {
    const chat = this.activeChat(contactId)
    this.publish(chat, this.item(chat, 'MESSAGE', contentType, { role: 'AGENT', content: text }))
  }

  agentEnds (contactId: string): void {
    this.finish(this.activeChat(contactId), 'AGENT')
  }

  transcript (contactId: string): ChatItem[] {
    const contact = this.source.contacts.get(contactId)
    if (!contact) throw new Error(`Simulator: unknown contact ${contactId}`)
    return this.visibleItems(contact)
  }

  openSockets (contactId?: string): number {
    return this.hub.count(contactId)
  }

  stats (): ParticipantStats {
    return { ...this.counters, websocketsOpened: this.hub.opened, websocketsOpen: this.hub.count() }
  }

  reset (): void {
    this.hub.drop()
    for (const chat of this.chats.values()) this.clock.clearTimeout(chat.endTimer)
    this.chats.clear()
    this.byParticipantToken.clear()
    this.connectionTokens.clear()
    this.websocketTokens.clear()
    this.rejections.length = 0
    this.agent?.reset()
    this.counters = ParticipantService.zeroCounters()
    this.hub.opened = 0
  }

  close (): void {
    this.delays.cancel()
    for (const chat of this.chats.values()) this.clock.clearTimeout(chat.endTimer)
    this.hub.close()
  }

  handleUpgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.hub.handleUpgrade(req, socket, head)
  }

  // --- HTTP ------------------------------------------------------------------------------------

  /** Answers a `/participant/*` request, CORS preflight included (browsers call it cross-origin). */
  async handleRequest (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const requestId = randomUUID()
    const cors = corsHeaders(req)
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { ...cors, 'access-control-max-age': '600' })
      res.end()
      return
    }
    const operation = req.method === 'POST' ? OPERATIONS[path] : undefined
    if (!operation) {
      sendJson(res, requestId, 404, { Message: 'Unknown operation' }, { ...cors, 'x-amzn-errortype': 'UnknownOperationException' })
      return
    }
    const started = this.clock.now()
    let status = 200
    try {
      const input = await readJson(req)
      const bearer = header(req, 'x-amz-bearer')
      const output = this[operation](bearer, input)
      sendJson(res, requestId, 200, output, cors)
    } catch (err) {
      const error = toApiError(err)
      status = error.status
      if (error.type === 'AccessDeniedException') this.counters.refused++
      sendJson(res, requestId, error.status, { Message: error.message }, { ...cors, 'x-amzn-errortype': error.type })
    }
    this.log?.(`Participant ${operation} ${status} requestId=${requestId} ${this.clock.now() - started}ms`)
  }

  /** The `/__sim/participant/*` control endpoints; false when the path is not one of them. */
  async handleControl (req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
    const requestId = randomUUID()
    if (req.method === 'GET' && path === '/__sim/participant/stats') {
      sendJson(res, requestId, 200, this.stats())
      return true
    }
    if (req.method !== 'POST' || !['/__sim/participant/fault', '/__sim/participant/say', '/__sim/participant/end'].includes(path)) return false
    let body: JsonObject
    try {
      body = await readJson(req)
    } catch {
      sendJson(res, requestId, 400, { Message: 'Body must be a JSON object' })
      return true
    }
    try {
      if (path === '/__sim/participant/fault') {
        if (!isParticipantFault(body)) throw new Error('Body must be a participant fault')
        this.fault(body)
      } else {
        if (typeof body.contactId !== 'string') throw new Error('contactId is required')
        if (path === '/__sim/participant/end') this.agentEnds(body.contactId)
        else if (typeof body.text === 'string' && body.text !== '') this.agentSays(body.contactId, body.text, body.contentType === 'text/markdown' ? 'text/markdown' : 'text/plain')
        else throw new Error('text is required')
      }
      sendJson(res, requestId, 200, {})
    } catch (err) {
      sendJson(res, requestId, 400, { Message: (err as Error).message })
    }
    return true
  }

  // --- operations ------------------------------------------------------------------------------

  private CreateParticipantConnection (bearer: string | undefined, input: JsonObject): JsonObject {
    const contactId = bearer === undefined ? undefined : this.byParticipantToken.get(bearer)
    const contact = contactId === undefined ? undefined : this.source.contacts.get(contactId)
    if (!contact || !this.isActive(contact.contactId)) throw denied()
    const types = input.Type === undefined || input.Type === null ? [] : input.Type
    if (!Array.isArray(types) || !types.every((t) => typeof t === 'string' && CONNECTION_TYPES.has(t))) {
      throw invalid('Type must be a list of WEBSOCKET, CONNECTION_CREDENTIALS or WEBRTC_CONNECTION')
    }
    if (input.ConnectParticipant !== undefined && input.ConnectParticipant !== null && typeof input.ConnectParticipant !== 'boolean') {
      throw invalid('ConnectParticipant must be a boolean')
    }
    if (types.length === 0 && input.ConnectParticipant !== true) throw invalid('Type or ConnectParticipant is required')
    if (types.includes('WEBRTC_CONNECTION')) throw invalid('WEBRTC_CONNECTION is not available for this contact')

    const chat = this.chatFor(contact)
    const now = this.clock.now()
    const output: JsonObject = {}
    const grant = (ttl: number): [string, Grant] =>
      [randomBytes(48).toString('base64url'), { contactId: contact.contactId, participantId: contact.participantId, expiresAt: now + ttl }]
    if (types.includes('WEBSOCKET')) {
      const [token, g] = grant(this.options.websocketUrlTtlMs ?? 100_000)
      this.websocketTokens.set(token, g)
      output.Websocket = { Url: `${this.wsBase}/participant/websocket?token=${token}`, ConnectionExpiry: new Date(g.expiresAt).toISOString() }
    }
    if (types.includes('CONNECTION_CREDENTIALS')) {
      const [token, g] = grant(this.options.connectionTokenTtlMs ?? 24 * 60 * 60 * 1000)
      this.connectionTokens.set(token, g)
      output.ConnectionCredentials = { ConnectionToken: token, Expiry: new Date(g.expiresAt).toISOString() }
    }
    this.counters.connectionsCreated++
    // With a WebSocket the agent waits for its subscription, so the greeting is not pushed to nobody.
    if (input.ConnectParticipant === true && !types.includes('WEBSOCKET')) this.customerConnected(chat)
    return output
  }

  private SendMessage (bearer: string | undefined, input: JsonObject): JsonObject {
    const { chat, participantId } = this.authorize(bearer)
    const contentType = requiredString(input.ContentType, 'ContentType', 1, 100)
    const max = MESSAGE_TYPES[contentType]
    if (max === undefined) throw invalid(`ContentType must be one of ${Object.keys(MESSAGE_TYPES).join(', ')}`)
    const content = requiredString(input.Content, 'Content', 1, max)
    const clientToken = optionalString(input.ClientToken, 'ClientToken', 1, 500)
    const replay = clientToken === undefined ? undefined : chat.sentByToken.get(clientToken)
    if (replay) return { ...replay }

    const rejection = this.rejections.find((r) => r.contactId === undefined || r.contactId === chat.contact.contactId)
    if (rejection) {
      if (--rejection.left <= 0) this.rejections.splice(this.rejections.indexOf(rejection), 1)
      throw new ParticipantError(rejection.errorType, 'The message was rejected (simulated fault)')
    }

    const item = this.item(chat, 'MESSAGE', contentType, { role: 'CUSTOMER', participantId, content })
    this.publish(chat, item)
    this.counters.messages++
    const output = { Id: item.Id, AbsoluteTime: item.AbsoluteTime }
    if (clientToken !== undefined) chat.sentByToken.set(clientToken, output)
    if (contentType === 'text/plain' || contentType === 'text/markdown') this.agent?.customerMessage(chat.contact.contactId, content, contentType)
    return output
  }

  private SendEvent (bearer: string | undefined, input: JsonObject): JsonObject {
    const { chat, participantId } = this.authorize(bearer)
    const contentType = requiredString(input.ContentType, 'ContentType', 1, 100)
    if (!EVENT_TYPES.has(contentType)) throw invalid(`ContentType must be one of ${[...EVENT_TYPES].join(', ')}`)
    const content = optionalString(input.Content, 'Content', 1, 1024)
    optionalString(input.ClientToken, 'ClientToken', 1, 500)
    this.counters.events++
    const now = new Date(this.clock.now()).toISOString()
    const id = randomUUID()
    if (contentType === CONTENT_TYPE.typing) {
      // Typing is relayed to the other participants and never kept in the transcript.
      this.counters.customerTyping++
    } else if (contentType === CONTENT_TYPE.acknowledged) {
      this.customerConnected(chat)
    } else {
      const messageId = receiptMessageId(content)
      const message = this.visibleItems(chat.contact).find((item) => item.Id === messageId && item.Type === 'MESSAGE')
      if (!message) throw invalid('Content.messageId is not a message of this chat')
      const receipts = (message.MessageMetadata ??= { MessageId: message.Id, Receipts: [] }).Receipts ??= []
      let receipt = receipts.find((r) => r.RecipientParticipantId === participantId)
      if (!receipt) receipts.push(receipt = { RecipientParticipantId: participantId })
      if (contentType === CONTENT_TYPE.read) receipt.ReadTimestamp ??= now
      else receipt.DeliveredTimestamp ??= now
    }
    return { Id: id, AbsoluteTime: now }
  }

  private GetTranscript (bearer: string | undefined, input: JsonObject): JsonObject {
    const { chat } = this.authorize(bearer)
    const query = transcriptQuery(input)
    let items = this.visibleItems(chat.contact)
    if (input.ContactId !== undefined) {
      const contactId = requiredString(input.ContactId, 'ContactId', 1, 256)
      if (!items.some((item) => item.ContactId === contactId)) throw invalid('ContactId is not part of this chat')
      items = items.filter((item) => item.ContactId === contactId)
    }
    let page
    try {
      page = pageTranscript(items, query, chat.contact.contactId)
    } catch (err) {
      if (err instanceof TranscriptQueryError) throw invalid(err.message)
      throw err
    }
    const output: JsonObject = {
      InitialContactId: chat.contact.initialContactId,
      Transcript: page.items.map(({ InitialContactId: _initial, ...item }) => item)
    }
    if (page.nextToken !== undefined) output.NextToken = page.nextToken
    return output
  }

  private DisconnectParticipant (bearer: string | undefined, input: JsonObject): JsonObject {
    const { chat } = this.authorize(bearer)
    optionalString(input.ClientToken, 'ClientToken', 1, 500)
    this.finish(chat, 'CUSTOMER')
    return {}
  }

  // --- chats -----------------------------------------------------------------------------------

  private authorize (bearer: string | undefined): { chat: Chat; participantId: string } {
    const grant = bearer === undefined ? undefined : this.connectionTokens.get(bearer)
    if (!grant || grant.expiresAt <= this.clock.now() || !this.isActive(grant.contactId)) throw denied()
    const chat = this.chats.get(grant.contactId)
    if (!chat) throw denied()
    return { chat, participantId: grant.participantId }
  }

  private resolveWebsocketToken (token: string): { contactId: string; participantId: string } | undefined {
    const grant = this.websocketTokens.get(token)
    if (!grant || grant.expiresAt <= this.clock.now() || !this.isActive(grant.contactId)) return undefined
    return grant
  }

  private onSubscribed (socket: ChatSocket): void {
    const chat = this.chats.get(socket.contactId)
    if (chat && !chat.ended) this.customerConnected(chat)
  }

  /** Active, by the contact's own clock; a chat found past its end is ended now. */
  private isActive (contactId: string): boolean {
    const contact = this.source.contacts.get(contactId)
    if (!contact) return false
    if (contact.endsAt > this.clock.now()) return true
    this.contactEnded(contactId)
    return false
  }

  private activeChat (contactId: string): Chat {
    const contact = this.source.contacts.get(contactId)
    if (!contact) throw new Error(`Simulator: unknown contact ${contactId}`)
    if (!this.isActive(contactId)) throw new Error(`Simulator: the chat ${contactId} has ended`)
    return this.chatFor(contact)
  }

  /** The chat of a contact, created on first use with what StartChatContact already put in it. */
  private chatFor (contact: SimulatedContact): Chat {
    let chat = this.chats.get(contact.contactId)
    if (chat) return chat
    const details = contact.input.ParticipantDetails as { DisplayName?: unknown } | undefined
    chat = {
      contact,
      customerName: typeof details?.DisplayName === 'string' ? details.DisplayName : 'Customer',
      agentId: randomUUID(),
      agentName: this.agent?.name ?? 'Agent',
      items: [],
      ended: contact.endsAt <= this.clock.now(),
      connected: false,
      sentByToken: new Map()
    }
    this.chats.set(contact.contactId, chat)
    const at = new Date(contact.createdAt).toISOString()
    chat.items.push(this.item(chat, 'EVENT', CONTENT_TYPE.joined, { role: 'CUSTOMER', at }))
    const initial = contact.input.InitialMessage as { ContentType?: unknown; Content?: unknown } | undefined
    if (typeof initial?.Content === 'string' && typeof initial.ContentType === 'string') {
      chat.items.push(this.item(chat, 'MESSAGE', initial.ContentType, { role: 'CUSTOMER', content: initial.Content, at }))
    }
    if (!chat.ended) {
      // Push the chat-ended event when the contact's duration runs out, even if nobody calls.
      chat.endTimer = this.clock.setTimeout(() => this.isActive(contact.contactId), Math.min(MAX_TIMER_MS, contact.endsAt - this.clock.now() + 1), { unref: true })
    }
    return chat
  }

  private customerConnected (chat: Chat): void {
    if (chat.connected || chat.ended) return
    chat.connected = true
    const initial = chat.contact.input.InitialMessage as { Content?: unknown } | undefined
    const opening = {
      contactId: chat.contact.contactId,
      customerName: chat.customerName,
      resumed: chat.contact.continuedFromContactId !== undefined
    }
    this.agent?.customerConnected(typeof initial?.Content === 'string' ? { ...opening, initialMessage: initial.Content } : opening)
  }

  private agentJoins (contactId: string, name: string): void {
    const chat = this.activeChat(contactId)
    chat.agentName = name
    this.publish(chat, this.item(chat, 'EVENT', CONTENT_TYPE.joined, { role: 'AGENT' }))
  }

  private agentTyping (contactId: string): void {
    const chat = this.activeChat(contactId)
    this.hub.push(contactId, this.item(chat, 'EVENT', CONTENT_TYPE.typing, { role: 'AGENT' }))
  }

  /** Ends a chat from one side (or the system): who left, then Connect's chat-ended event. */
  private finish (chat: Chat, by: ParticipantRole): void {
    if (chat.ended) return
    chat.ended = true
    this.clock.clearTimeout(chat.endTimer)
    if (by !== 'SYSTEM') this.publish(chat, this.item(chat, 'EVENT', CONTENT_TYPE.left, { role: by }))
    const ended = this.item(chat, 'EVENT', CONTENT_TYPE.ended, {})
    this.publish(chat, ended)
    this.agent?.forget(chat.contact.contactId)
    if (chat.contact.endsAt > this.clock.now()) this.source.endChat(chat.contact.contactId)
  }

  private item (chat: Chat, type: ChatItem['Type'], contentType: string,
    options: { role?: ParticipantRole; participantId?: string; content?: string; at?: string }): ChatItem {
    const item: ChatItem = {
      AbsoluteTime: options.at ?? new Date(this.clock.now()).toISOString(),
      ContentType: contentType,
      Id: randomUUID(),
      Type: type,
      ContactId: chat.contact.contactId,
      InitialContactId: chat.contact.initialContactId
    }
    if (options.content !== undefined) item.Content = options.content
    if (options.role === 'CUSTOMER') {
      item.ParticipantId = options.participantId ?? chat.contact.participantId
      item.DisplayName = chat.customerName
      item.ParticipantRole = 'CUSTOMER'
    } else if (options.role === 'AGENT') {
      item.ParticipantId = chat.agentId
      item.DisplayName = chat.agentName
      item.ParticipantRole = 'AGENT'
    }
    return item
  }

  /** Keeps an item in the transcript and pushes it to the chat's subscribed WebSockets. */
  private publish (chat: Chat, item: ChatItem): void {
    chat.items.push(item)
    this.hub.push(chat.contact.contactId, item)
  }

  /**
   * The items a contact's participants see, oldest first. A persistent chat also sees its past:
   * ENTIRE_PAST_SESSION every earlier contact of the session, FROM_SEGMENT the source contact's.
   */
  private visibleItems (contact: SimulatedContact): ChatItem[] {
    const own = this.chatFor(contact).items
    const source = contact.continuedFromContactId === undefined ? undefined : this.source.contacts.get(contact.continuedFromContactId)
    if (!source) return [...own]
    const rehydration = (contact.input.PersistentChat as { RehydrationType?: unknown } | undefined)?.RehydrationType
    if (rehydration === 'FROM_SEGMENT') return [...this.visibleItems(source), ...own]
    const earlier = [...this.source.contacts.values()]
      .filter((c) => c.initialContactId === contact.initialContactId && c.contactId !== contact.contactId && c.createdAt <= contact.createdAt)
      .sort((a, b) => a.createdAt - b.createdAt)
    return [...earlier.flatMap((c) => this.chatFor(c).items), ...own]
  }
}

const OPERATIONS: Record<string, 'CreateParticipantConnection' | 'SendMessage' | 'SendEvent' | 'GetTranscript' | 'DisconnectParticipant'> = {
  '/participant/connection': 'CreateParticipantConnection',
  '/participant/message': 'SendMessage',
  '/participant/event': 'SendEvent',
  '/participant/transcript': 'GetTranscript',
  '/participant/disconnect': 'DisconnectParticipant'
}

function toApiError (err: unknown): ApiError {
  if (err instanceof ParticipantError) return { status: ERROR_STATUS[err.type], type: err.type, message: err.message }
  return { status: 500, type: 'InternalServerException', message: 'Simulator error' }
}

function isParticipantFault (value: JsonObject): value is ParticipantFault {
  if (value.contactId !== undefined && typeof value.contactId !== 'string') return false
  switch (value.type) {
    case 'dropWebSocket':
    case 'expireConnectionToken':
      return true
    case 'rejectMessage':
      return (value.errorType === undefined || (typeof value.errorType === 'string' && value.errorType in ERROR_STATUS)) &&
        (value.count === undefined || (typeof value.count === 'number' && Number.isInteger(value.count) && value.count > 0))
    default:
      return false
  }
}

function requiredString (value: unknown, field: string, min: number, max: number): string {
  if (typeof value !== 'string') throw invalid(`${field} is required and must be a string`)
  const length = [...value].length
  if (length < min || length > max) throw invalid(`${field} must be between ${min} and ${max} characters long`)
  return value
}

function optionalString (value: unknown, field: string, min: number, max: number): string | undefined {
  return value === undefined || value === null ? undefined : requiredString(value, field, min, max)
}

function receiptMessageId (content: string | undefined): string {
  let parsed: unknown
  try {
    parsed = content === undefined ? undefined : JSON.parse(content)
  } catch { /* refused below */ }
  if (!isObject(parsed) || typeof parsed.messageId !== 'string') throw invalid('Content must be JSON with a messageId')
  return parsed.messageId
}

function transcriptQuery (input: JsonObject): TranscriptQuery {
  const query: TranscriptQuery = {}
  if (input.MaxResults !== undefined && input.MaxResults !== null) {
    if (typeof input.MaxResults !== 'number' || !Number.isInteger(input.MaxResults) || input.MaxResults < 0 || input.MaxResults > 100) {
      throw invalid('MaxResults must be an integer between 0 and 100')
    }
    query.MaxResults = input.MaxResults
  }
  const nextToken = optionalString(input.NextToken, 'NextToken', 1, 1000)
  if (nextToken !== undefined) query.NextToken = nextToken
  if (input.ScanDirection !== undefined && input.ScanDirection !== null) {
    if (input.ScanDirection !== 'FORWARD' && input.ScanDirection !== 'BACKWARD') throw invalid('ScanDirection must be FORWARD or BACKWARD')
    query.ScanDirection = input.ScanDirection
  }
  if (input.SortOrder !== undefined && input.SortOrder !== null) {
    if (input.SortOrder !== 'ASCENDING' && input.SortOrder !== 'DESCENDING') throw invalid('SortOrder must be ASCENDING or DESCENDING')
    query.SortOrder = input.SortOrder
  }
  if (input.StartPosition !== undefined && input.StartPosition !== null) {
    if (!isObject(input.StartPosition)) throw invalid('StartPosition must be an object')
    const position = input.StartPosition
    const start: NonNullable<TranscriptQuery['StartPosition']> = {}
    const id = optionalString(position.Id, 'StartPosition.Id', 1, 256)
    if (id !== undefined) start.Id = id
    const time = optionalString(position.AbsoluteTime, 'StartPosition.AbsoluteTime', 1, 100)
    if (time !== undefined) start.AbsoluteTime = time
    if (position.MostRecent !== undefined && position.MostRecent !== null) {
      if (typeof position.MostRecent !== 'number' || !Number.isInteger(position.MostRecent) || position.MostRecent < 0 || position.MostRecent > 100) {
        throw invalid('StartPosition.MostRecent must be an integer between 0 and 100')
      }
      start.MostRecent = position.MostRecent
    }
    if (Object.keys(start).length > 1) throw invalid('StartPosition takes only one of Id, AbsoluteTime and MostRecent')
    query.StartPosition = start
  }
  return query
}

function header (req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  return typeof value === 'string' && value !== '' ? value : undefined
}

/** Browsers call from the widget's origin; the simulator lets any origin in (it is a development tool). */
function corsHeaders (req: IncomingMessage): Record<string, string> {
  const origin = header(req, 'origin')
  if (origin === undefined) return {}
  return {
    'access-control-allow-origin': origin,
    'access-control-allow-methods': 'POST, OPTIONS',
    'access-control-allow-headers': header(req, 'access-control-request-headers') ?? 'content-type, x-amz-bearer',
    'access-control-expose-headers': 'x-amzn-requestid, x-amzn-errortype, date',
    vary: 'Origin'
  }
}

async function readJson (req: IncomingMessage): Promise<JsonObject> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY_BYTES) throw invalid('Request body too large')
    chunks.push(chunk as Buffer)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  if (text.trim() === '') return {}
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw invalid('Request body is not valid JSON')
  }
  if (!isObject(value)) throw invalid('Request body must be a JSON object')
  return value
}
