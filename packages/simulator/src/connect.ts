/**
 * In-process simulator of Amazon Connect's StartChatContact (REST-JSON, `PUT /contact/chat`).
 *
 * It speaks the same wire protocol as the real service closely enough that the real
 * `@aws-sdk/client-connect` client parses its successes and errors into the right exception
 * classes, so the gateway, its tests and the benchmark can run without an AWS account.
 * Only node built-ins are used, so it can be started from anywhere (tests, `npm run dev`, a CLI).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { randomBytes, randomUUID } from 'node:crypto'
import { DEFAULT_FAULT_MESSAGE, ERROR_STATUS, deferred, isFault, isRequestRate, TokenBucket, type Fault } from './faults.js'
import type { SimulatedContact } from './contact.js'
import { systemClock, type Clock } from './clock.js'
import { Delays } from './delays.js'
import { handleContactOperation } from './contact-operations.js'
import { VerifyStandIn } from './human-check-verify.js'
import { AvailabilityService, type AvailabilitySimulator, type QueueSettings } from './availability.js'
import { ParticipantService, type ParticipantOptions, type ParticipantSimulator } from './participant.js'
import {
  checkAuthorization, isObject, MAX_BODY_BYTES, OPERATION_METHOD, OPERATION_PATH, readBody, safeJsonParse, sendJson,
  validateStartChatInput, ValidationError, type ApiError, type JsonObject, type StartChatResponse, type ValidInput
} from './start-chat-wire.js'

export { ERROR_FAULT_TYPES, type ErrorFaultType, type Fault } from './faults.js'
export type { SimulatedContact } from './contact.js'

const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000
const DEFAULT_CHAT_DURATION_MS = 25 * 60 * 60_000
const DEFAULT_REQUEST_HISTORY = 10_000
const DEFAULT_FORGET_ENDED_MS = 60 * 60 * 1000

export interface SimulatorOptions {
  port?: number
  host?: string
  /** Added to every successful answer, default 0. */
  latencyMs?: number
  /** Token bucket over all requests; beyond it TooManyRequestsException (429). */
  requestRate?: { perSecond: number; burst: number }
  /** Concurrent active chats; beyond it LimitExceededException (429). */
  maxActiveChats?: number
  /** Every chat is active for this long after creation, then ended; default: its ChatDurationInMinutes, else 25 hours. */
  chatDurationMs?: number
  /**
   * An ended chat is forgotten this long after it ended (its contact, transcript and tokens), so a
   * long run or a load test does not keep every chat; default one hour. Until then it can be continued.
   */
  forgetEndedAfterMs?: number
  /** `requests` keeps the newest this many; default 10,000 (stats() counts them all). */
  requestHistory?: number
  log?: (line: string) => void
  /**
   * Serve the `/__sim/*` control API (stats, fault, rate, reset) so another process can drive the
   * simulator. Off by default: in-process users have the object itself.
   */
  controlApi?: boolean
  /**
   * The Participant Service on the same server (`/participant/*` and its WebSocket), sharing these
   * contacts; on unless false.
   */
  participant?: ParticipantOptions | false
  /** The default queue's hours and agents for DescribeQueue, GetEffectiveHoursOfOperations and GetCurrentMetricData. */
  availability?: QueueSettings
  /** Whose time it keeps (chat durations, forgetting, the rate bucket, token expiry, every wait); default the system's. */
  clock?: Clock
}

export interface RecordedRequest {
  at: number
  clientToken?: string
  input: Record<string, unknown>
  /** HTTP status of the answer; 0 while unanswered (and forever for hang/reset faults). */
  status: number
  errorType?: string
  requestId: string
  authorization?: string
  /** True when the answer was an idempotent replay of an earlier contact. */
  replayed?: boolean
}

export interface SimulatorStats {
  /** StartChatContact requests. */
  received: number
  created: number
  replayed: number
  throttled: number
  limitExceeded: number
  invalid: number
  faulted: number
  active: number
  /** DescribeContact and StopContact requests. */
  described: number
  stopped: number
  /** Human-check tokens verified at the providers' stand-ins. */
  humanChecksVerified: number
}

export interface ConnectSimulator {
  readonly url: string
  readonly port: number
  /** StartChatContact requests received, in order (including refused/faulted ones); the newest `requestHistory`. */
  readonly requests: RecordedRequest[]
  readonly contacts: Map<string, SimulatedContact>
  /** The Participant Service side: faults, the agent's voice, transcripts. Undefined when turned off. */
  readonly participant: ParticipantSimulator | undefined
  /** Queues, opening hours and agents for the availability APIs (see availability.ts). */
  readonly availability: AvailabilitySimulator
  /** Queue: each incoming request consumes the next queued fault, then normal behaviour resumes. */
  script(...faults: Fault[]): void
  /** Persistent fault for every request until cleared (queued script faults take precedence). */
  setFault(fault: Fault | null): void
  setLatency(ms: number): void
  /**
   * Changes the request-rate quota from now on (null: none), as when another system starts or
   * stops using the account's quota. Tokens already in the bucket stay, up to the new burst.
   */
  setRequestRate(rate: { perSecond: number; burst: number } | null): void
  /** End an active chat now. Throws for an unknown contact id (a test bug, not a Connect answer). */
  endChat(contactId: string): void
  stats(): SimulatorStats
  /** Clear requests, contacts, faults, idempotency cache, buckets and counters. */
  reset(): void
  /** Close the server and destroy every open socket, including hanging ones. */
  close(): Promise<void>
}

// ---------------------------------------------------------------------------------------------
// ---------------------------------------------------------------------------------------------
// The simulator

/** Per-request context: the recorded entry and the HTTP pair. */
interface Exchange {
  req: IncomingMessage
  res: ServerResponse
  record: RecordedRequest
  startedAt: number
}

interface IdempotencyEntry {
  expiresAt: number
  /** Resolves once the contact exists; pending while the first request is still in flight. */
  response: Promise<StartChatResponse>
  /** The contact it answered with, once created: forgotten with it. */
  contactId?: string
}

class Simulator implements ConnectSimulator {
  readonly requests: RecordedRequest[] = []
  readonly contacts = new Map<string, SimulatedContact>()
  url = ''
  port = 0
  readonly clock: Clock

  private readonly server: Server
  private readonly sockets = new Set<Socket>()
  private readonly delays: Delays
  private readonly scripted: Fault[] = []
  private persistentFault: Fault | null = null
  private latencyMs: number
  private bucket: TokenBucket | undefined
  private readonly idempotency = new Map<string, IdempotencyEntry>()
  /** Contacts that may still be active; swept lazily so counting stays cheap under load. */
  private readonly maybeActive = new Set<SimulatedContact>()
  /** Requests past the quota check whose contact is not created yet (they hold a slot). */
  private reserved = 0
  private counters = Simulator.zeroCounters()
  private lastSweep = 0
  private closed = false
  private readonly participantService: ParticipantService | undefined
  private readonly verifyStandIn: VerifyStandIn
  private readonly availabilityService: AvailabilityService

  constructor (private readonly options: SimulatorOptions) {
    const clock = options.clock ?? systemClock
    this.clock = clock
    this.delays = new Delays(clock)
    this.verifyStandIn = new VerifyStandIn(clock)
    this.latencyMs = options.latencyMs ?? 0
    this.bucket = options.requestRate
      ? new TokenBucket(options.requestRate.perSecond, options.requestRate.burst, clock)
      : undefined
    this.availabilityService = new AvailabilityService(options.availability, (ms) => this.delays.sleep(ms), () => clock.now())
    this.server = createServer((req, res) => this.route(req, res))
    if (options.participant !== false) {
      const service = new ParticipantService(this, options.participant ?? {}, options.log, clock)
      this.participantService = service
      this.server.on('upgrade', (req, socket, head: Buffer) => service.handleUpgrade(req, socket, head))
    }
    this.server.on('connection', (socket) => {
      this.sockets.add(socket)
      socket.on('close', () => this.sockets.delete(socket))
    })
  }

  private static zeroCounters (): Omit<SimulatorStats, 'active' | 'humanChecksVerified'> {
    return { received: 0, created: 0, replayed: 0, throttled: 0, limitExceeded: 0, invalid: 0, faulted: 0, described: 0, stopped: 0 }
  }

  countOperation (name: 'described' | 'stopped'): void {
    this.counters[name]++
  }

  async listen (): Promise<void> {
    const host = this.options.host ?? '127.0.0.1'
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.options.port ?? 0, host, () => {
        this.server.off('error', reject)
        resolve()
      })
    })
    const address = this.server.address() as AddressInfo
    this.port = address.port
    const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address
    this.url = `http://${urlHost}:${address.port}`
    this.participantService?.listening(address.address, address.port)
  }

  get participant (): ParticipantSimulator | undefined {
    return this.participantService
  }

  get availability (): AvailabilitySimulator {
    return this.availabilityService
  }

  // --- public API ----------------------------------------------------------------------------

  script (...faults: Fault[]): void {
    this.scripted.push(...faults)
  }

  setFault (fault: Fault | null): void {
    this.persistentFault = fault
  }

  setLatency (ms: number): void {
    this.latencyMs = ms
  }

  setRequestRate (rate: { perSecond: number; burst: number } | null): void {
    if (!rate) this.bucket = undefined
    else if (this.bucket) this.bucket.change(rate.perSecond, rate.burst)
    else this.bucket = new TokenBucket(rate.perSecond, rate.burst, this.clock)
  }

  endChat (contactId: string): void {
    const contact = this.contacts.get(contactId)
    if (!contact) throw new Error(`Simulator: unknown contact ${contactId}`)
    contact.endsAt = Math.min(contact.endsAt, this.clock.now())
    this.maybeActive.delete(contact)
    this.participantService?.contactEnded(contactId)
  }

  stats (): SimulatorStats {
    return { ...this.counters, active: this.activeCount(), humanChecksVerified: this.verifyStandIn.verified }
  }

  reset (): void {
    this.requests.length = 0
    this.contacts.clear()
    this.maybeActive.clear()
    this.scripted.length = 0
    this.persistentFault = null
    this.idempotency.clear()
    this.bucket?.refill()
    this.counters = Simulator.zeroCounters()
    this.verifyStandIn.reset()
    this.participantService?.reset()
    this.availabilityService.reset()
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    // Pending latency/slow waits would otherwise answer on destroyed sockets.
    this.delays.cancel()
    this.participantService?.close()
    const closing = new Promise<void>((resolve) => this.server.close(() => resolve()))
    // server.close() waits for open connections; hanging requests never end on their own.
    for (const socket of this.sockets) socket.destroy()
    await closing
  }

  // --- routing -------------------------------------------------------------------------------

  private route (req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0]
    if (this.options.controlApi && path?.startsWith('/__sim/')) {
      this.handleControl(req, res, path).catch((err: unknown) => this.internalError(res, err))
      return
    }
    if (this.participantService && path?.startsWith('/participant/')) {
      this.participantService.handleRequest(req, res, path).catch((err: unknown) => this.internalError(res, err))
      return
    }
    if (path && this.availabilityService.handles(req, res, path)) return
    if (req.method !== OPERATION_METHOD || path !== OPERATION_PATH) {
      this.routeOther(req, res, path ?? '/').catch((err: unknown) => this.internalError(res, err))
      return
    }
    const record: RecordedRequest = { at: this.clock.now(), input: {}, status: 0, requestId: randomUUID() }
    const authorization = req.headers.authorization
    if (authorization !== undefined) record.authorization = authorization
    this.requests.push(record)
    // Bounded: the oldest tenth goes at once, so trimming is not a copy per request.
    const history = this.options.requestHistory ?? DEFAULT_REQUEST_HISTORY
    if (this.requests.length > history) this.requests.splice(0, this.requests.length - Math.floor(history * 0.9))
    this.counters.received++
    const exchange: Exchange = { req, res, record, startedAt: this.clock.now() }
    this.handleStartChat(exchange).catch((err: unknown) => this.internalError(res, err, record))
  }

  /** DescribeContact, StopContact and the human-check stand-ins; anything else is an unknown operation. */
  private async routeOther (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (await handleContactOperation(this, req, res, path)) return
    if (await this.verifyStandIn.handle(req, res, path)) return
    sendJson(res, randomUUID(), 404, { Message: `Unknown operation ${req.method ?? ''} ${path}` }, {
      'x-amzn-errortype': 'UnknownOperationException'
    })
  }

  private async handleControl (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (this.participantService && (await this.participantService.handleControl(req, res, path))) return
    if (await this.availabilityService.handleControl(req, res, path)) return
    const requestId = randomUUID()
    if (req.method === 'GET' && path === '/__sim/stats') {
      sendJson(res, requestId, 200, this.stats())
      return
    }
    if (req.method === 'POST' && path === '/__sim/reset') {
      this.reset()
      sendJson(res, requestId, 200, {})
      return
    }
    if (req.method === 'POST' && path === '/__sim/fault') {
      const body = await readBody(req, MAX_BODY_BYTES)
      const fault = body.ok ? safeJsonParse(body.text) : undefined
      if (fault === null || isFault(fault)) {
        this.setFault(fault)
        sendJson(res, requestId, 200, { fault })
      } else {
        sendJson(res, requestId, 400, { Message: 'Body must be a Fault or null' })
      }
      return
    }
    if (req.method === 'POST' && path === '/__sim/rate') {
      const body = await readBody(req, MAX_BODY_BYTES)
      const rate = body.ok ? safeJsonParse(body.text) : undefined
      if (rate === null || isRequestRate(rate)) {
        this.setRequestRate(rate)
        sendJson(res, requestId, 200, { requestRate: rate })
      } else {
        sendJson(res, requestId, 400, { Message: 'Body must be {"perSecond": n > 0, "burst": n >= 1} or null' })
      }
      return
    }
    sendJson(res, requestId, 404, { Message: `Unknown control endpoint ${req.method ?? ''} ${path}` })
  }

  // --- StartChatContact pipeline -------------------------------------------------------------
  // Order: auth → parse/validate → fault → rate bucket → idempotency → active quota →
  // persistent-chat checks → latency → create. Everything from the idempotency lookup to the
  // slot reservation is synchronous, so concurrent requests cannot both pass a check.

  private async handleStartChat (ex: Exchange): Promise<void> {
    const authError = checkAuthorization(ex.req.headers.authorization)
    if (authError) return this.refuse(ex, authError, 'invalid')

    const body = await readBody(ex.req, MAX_BODY_BYTES)
    if (!body.ok) {
      // Node discards the unread rest of the body after the answer, so the client sees the 413.
      return this.refuse(
        ex,
        { status: 413, type: 'RequestEntityTooLargeException', message: 'Request body exceeds 1 MiB' },
        'invalid'
      )
    }
    const input = body.text.trim() === '' ? {} : safeJsonParse(body.text)
    if (!isObject(input)) {
      return this.refuse(ex, { status: 400, type: 'SerializationException', message: 'Malformed JSON body' }, 'invalid')
    }
    ex.record.input = input
    if (typeof input.ClientToken === 'string') ex.record.clientToken = input.ClientToken

    let valid: ValidInput
    try {
      valid = validateStartChatInput(input)
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err
      return this.refuse(ex, { status: 400, type: 'InvalidParameterException', message: err.message }, 'invalid')
    }

    const fault = this.nextFault()
    if (fault) {
      this.counters.faulted++
      if (fault.type === 'slow') await this.delays.sleep(fault.delayMs)
      else return this.applyFault(ex, fault)
    }

    if (this.bucket && !this.bucket.take()) {
      return this.refuse(ex, { status: 429, type: 'TooManyRequestsException', message: 'Rate exceeded' }, 'throttled')
    }

    const replay = this.lookupIdempotent(valid.clientToken)
    if (replay) {
      const response = await replay
      ex.record.replayed = true
      this.counters.replayed++
      return this.answer(ex, 200, response)
    }

    const quotaError = this.checkActiveQuota() ?? this.checkPersistentSource(valid) ?? this.checkRelatedContact(valid)
    if (quotaError) return this.refuse(ex, quotaError, quotaError.type === 'LimitExceededException' ? 'limitExceeded' : undefined)

    // Reserve the slot and the token now; the contact itself appears after the latency.
    this.reserved++
    const created = deferred<StartChatResponse>()
    const entry: IdempotencyEntry = { expiresAt: this.clock.now() + IDEMPOTENCY_TTL_MS, response: created.promise }
    if (valid.clientToken !== undefined) this.idempotency.set(valid.clientToken, entry)
    await this.delays.sleep(this.latencyMs)
    this.reserved--
    const response = this.createContact(input, valid)
    entry.contactId = response.ContactId
    created.resolve(response)
    this.answer(ex, 200, response)
  }

  private nextFault (): Fault | undefined {
    return this.scripted.shift() ?? this.persistentFault ?? undefined
  }

  private applyFault (ex: Exchange, fault: Exclude<Fault, { type: 'slow' }>): void {
    switch (fault.type) {
      case 'hang':
        ex.record.errorType = 'hang' // never answered; close() destroys the socket
        return
      case 'reset':
        ex.record.errorType = 'reset'
        ex.req.socket.destroy()
        this.logAnswer(ex)
        return
      case 'malformed':
        ex.record.status = 200
        ex.record.errorType = 'malformed'
        ex.res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-requestid': ex.record.requestId })
        ex.res.end('<html><body>Service Unavailable</body>')
        this.logAnswer(ex)
        return
      default:
        this.refuse(ex, {
          status: ERROR_STATUS[fault.type],
          type: fault.type,
          message: fault.message ?? DEFAULT_FAULT_MESSAGE[fault.type],
          retryAfterSeconds: fault.retryAfterSeconds
        })
    }
  }

  /** A pending or settled response for a known, unexpired ClientToken. */
  private lookupIdempotent (clientToken: string | undefined): Promise<StartChatResponse> | undefined {
    if (clientToken === undefined) return undefined
    const entry = this.idempotency.get(clientToken)
    if (!entry) return undefined
    if (entry.expiresAt <= this.clock.now()) {
      this.idempotency.delete(clientToken)
      return undefined
    }
    return entry.response
  }

  private checkActiveQuota (): ApiError | undefined {
    const max = this.options.maxActiveChats
    if (max === undefined || this.activeCount() + this.reserved < max) return undefined
    return {
      status: 429,
      type: 'LimitExceededException',
      message: `The maximum number of concurrent active chats (${max}) has been reached`
    }
  }

  private checkPersistentSource (valid: ValidInput): ApiError | undefined {
    const chat = valid.persistentChat
    if (!chat) return undefined
    const source = this.contacts.get(chat.sourceContactId)
    if (!source) return { status: 404, type: 'ResourceNotFoundException', message: 'Source contact not found' }
    if (source.endsAt > this.clock.now()) {
      return { status: 400, type: 'InvalidRequestException', message: 'Source contact is still active' }
    }
    if (chat.rehydrationType === 'ENTIRE_PAST_SESSION' && source.initialContactId !== source.contactId) {
      return {
        status: 400,
        type: 'InvalidRequestException',
        message: 'ENTIRE_PAST_SESSION requires SourceContactId to be the initial contact of the past session'
      }
    }
    return undefined
  }

  private checkRelatedContact (valid: ValidInput): ApiError | undefined {
    if (valid.relatedContactId === undefined || this.contacts.has(valid.relatedContactId)) return undefined
    return { status: 404, type: 'ResourceNotFoundException', message: 'Related contact not found' }
  }

  private createContact (input: JsonObject, valid: ValidInput): StartChatResponse {
    const now = this.clock.now()
    const contactId = randomUUID()
    const source = valid.persistentChat ? this.contacts.get(valid.persistentChat.sourceContactId) : undefined
    const related = valid.relatedContactId === undefined ? undefined : this.contacts.get(valid.relatedContactId)
    const contact: SimulatedContact = {
      contactId,
      participantId: randomUUID(),
      // Real tokens are long opaque strings; length matters for header/body size realism.
      participantToken: randomBytes(192).toString('base64url'),
      initialContactId: source?.initialContactId ?? contactId,
      createdAt: now,
      // Connect ends a chat after ChatDurationInMinutes (25 hours without one); chatDurationMs, when
      // set, stands in for every duration so tests and the demo see chats end.
      endsAt: now + (this.options.chatDurationMs ?? (typeof input.ChatDurationInMinutes === 'number' ? input.ChatDurationInMinutes * 60_000 : DEFAULT_CHAT_DURATION_MS)),
      // Linking copies the related contact's attributes; the request's own win over them.
      attributes: { ...related?.attributes, ...(isObject(input.Attributes) ? input.Attributes as Record<string, string> : {}) },
      input
    }
    if (source) contact.continuedFromContactId = source.contactId
    if (related) contact.relatedContactId = related.contactId
    this.forgetEnded(now)
    this.contacts.set(contactId, contact)
    this.maybeActive.add(contact)
    this.participantService?.contactCreated(contact)
    this.counters.created++
    const response: StartChatResponse = {
      ContactId: contact.contactId,
      ParticipantId: contact.participantId,
      ParticipantToken: contact.participantToken
    }
    if (contact.continuedFromContactId !== undefined) response.ContinuedFromContactId = contact.continuedFromContactId
    return response
  }

  /** Drops chats ended longer than forgetEndedAfterMs ago, with their idempotency entries (and expired ones); at most once a minute. */
  private forgetEnded (now: number): void {
    const after = this.options.forgetEndedAfterMs ?? DEFAULT_FORGET_ENDED_MS
    if (now - this.lastSweep < Math.min(after, 60_000)) return
    this.lastSweep = now
    const forgotten: SimulatedContact[] = []
    for (const contact of this.contacts.values()) {
      if (contact.endsAt + after <= now) forgotten.push(contact)
    }
    for (const contact of forgotten) {
      this.contacts.delete(contact.contactId)
      this.maybeActive.delete(contact)
    }
    if (forgotten.length > 0) this.participantService?.contactsForgotten(forgotten)
    const gone = new Set(forgotten.map((c) => c.contactId))
    for (const [token, entry] of this.idempotency) {
      if (entry.expiresAt <= now || (entry.contactId !== undefined && gone.has(entry.contactId))) this.idempotency.delete(token)
    }
  }

  private activeCount (): number {
    const now = this.clock.now()
    for (const contact of this.maybeActive) {
      if (contact.endsAt <= now) this.maybeActive.delete(contact)
    }
    return this.maybeActive.size
  }

  // --- answering -----------------------------------------------------------------------------

  private refuse (ex: Exchange, error: ApiError, counter?: 'invalid' | 'throttled' | 'limitExceeded'): void {
    if (counter) this.counters[counter]++
    const headers: Record<string, string> = { 'x-amzn-errortype': error.type }
    if (error.retryAfterSeconds !== undefined) headers['retry-after'] = String(error.retryAfterSeconds)
    ex.record.errorType = error.type
    this.answer(ex, error.status, { Message: error.message }, headers)
  }

  private answer (ex: Exchange, status: number, body: object, headers: Record<string, string> = {}): void {
    ex.record.status = status
    sendJson(ex.res, ex.record.requestId, status, body, headers)
    this.logAnswer(ex)
  }

  private logAnswer (ex: Exchange): void {
    const { record } = ex
    const outcome = record.errorType ?? (record.replayed ? 'replayed' : 'created')
    this.options.log?.(
      `StartChatContact ${record.status} ${outcome} requestId=${record.requestId} ${this.clock.now() - ex.startedAt}ms`
    )
  }

  private internalError (res: ServerResponse, err: unknown, record?: RecordedRequest): void {
    this.options.log?.(`simulator error: ${err instanceof Error ? err.message : String(err)}`)
    if (res.headersSent || res.destroyed) return
    const requestId = record?.requestId ?? randomUUID()
    if (record) {
      record.status = 500
      record.errorType = 'InternalServiceException'
    }
    sendJson(res, requestId, 500, { Message: 'Simulator error' }, { 'x-amzn-errortype': 'InternalServiceException' })
  }
}

export async function startSimulator (options: SimulatorOptions = {}): Promise<ConnectSimulator> {
  const simulator = new Simulator(options)
  await simulator.listen()
  return simulator
}
