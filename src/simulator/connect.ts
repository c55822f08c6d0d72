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
import { ParticipantService, type ParticipantOptions, type ParticipantSimulator } from './participant.js'

export type ErrorFaultType =
  | 'ThrottlingException'
  | 'TooManyRequestsException'
  | 'LimitExceededException'
  | 'ResourceNotFoundException'
  | 'AccessDeniedException'
  | 'InvalidParameterException'
  | 'InvalidRequestException'
  | 'InternalServiceException'

export type Fault =
  | { type: ErrorFaultType; retryAfterSeconds?: number; message?: string }
  | { type: 'slow'; delayMs: number } // wait then answer normally
  | { type: 'hang' } // never answer (until close())
  | { type: 'reset' } // destroy the socket without a response
  | { type: 'malformed' } // 200 with a body that is not JSON

export interface SimulatorOptions {
  port?: number
  host?: string
  /** Added to every successful answer, default 0. */
  latencyMs?: number
  /** Token bucket over all requests; beyond it TooManyRequestsException (429). */
  requestRate?: { perSecond: number; burst: number }
  /** Concurrent active chats; beyond it LimitExceededException (429). */
  maxActiveChats?: number
  /** A chat is active for this long after creation, then ended; default 300_000. */
  chatDurationMs?: number
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

export interface SimulatedContact {
  contactId: string
  participantId: string
  participantToken: string
  initialContactId: string
  continuedFromContactId?: string
  createdAt: number
  endsAt: number
  input: Record<string, unknown>
}

export interface SimulatorStats {
  received: number
  created: number
  replayed: number
  throttled: number
  limitExceeded: number
  invalid: number
  faulted: number
  active: number
}

export interface ConnectSimulator {
  readonly url: string
  readonly port: number
  /** Every StartChatContact request received, in order (including refused/faulted ones). */
  readonly requests: RecordedRequest[]
  readonly contacts: Map<string, SimulatedContact>
  /** The Participant Service side: faults, the agent's voice, transcripts. Undefined when turned off. */
  readonly participant: ParticipantSimulator | undefined
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
// Wire constants

const OPERATION_METHOD = 'PUT'
const OPERATION_PATH = '/contact/chat'
const MAX_BODY_BYTES = 1024 * 1024
const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000
const DEFAULT_CHAT_DURATION_MS = 300_000

const ERROR_STATUS: Record<ErrorFaultType, number> = {
  ThrottlingException: 429,
  TooManyRequestsException: 429,
  LimitExceededException: 429,
  ResourceNotFoundException: 404,
  AccessDeniedException: 403,
  InvalidParameterException: 400,
  InvalidRequestException: 400,
  InternalServiceException: 500
}

const DEFAULT_FAULT_MESSAGE: Record<ErrorFaultType, string> = {
  ThrottlingException: 'Rate exceeded',
  TooManyRequestsException: 'Rate exceeded',
  LimitExceededException: 'The allowed limit for the resource has been exceeded',
  ResourceNotFoundException: 'The specified resource was not found',
  AccessDeniedException: 'You do not have sufficient access to perform this action',
  InvalidParameterException: 'One or more of the specified parameters are not valid',
  InvalidRequestException: 'The request is not valid',
  InternalServiceException: 'Request processing failed because of an error or failure with the service'
}

export const ERROR_FAULT_TYPES = Object.keys(ERROR_STATUS) as ErrorFaultType[]

/** A refusal the simulator answers with: HTTP status, `x-amzn-errortype`, message. */
interface ApiError {
  status: number
  type: string
  message: string
  retryAfterSeconds?: number
}

interface StartChatResponse {
  ContactId: string
  ParticipantId: string
  ParticipantToken: string
  ContinuedFromContactId?: string
}

// ---------------------------------------------------------------------------------------------
// Input validation (the limits Connect documents for StartChatContact)

type JsonObject = Record<string, unknown>

/** The validated parts of the input the simulator acts on. */
interface ValidInput {
  clientToken?: string
  persistentChat?: { rehydrationType: 'ENTIRE_PAST_SESSION' | 'FROM_SEGMENT'; sourceContactId: string }
}

class ValidationError extends Error {}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Connect counts characters, not UTF-16 code units. */
function charLength(value: string): number {
  let n = 0
  for (const _ of value) n++
  return n
}

function checkString(value: unknown, field: string, min: number, max: number): string {
  if (typeof value !== 'string') throw new ValidationError(`${field} must be a string`)
  const len = charLength(value)
  if (len < min || len > max) {
    throw new ValidationError(`${field} must be between ${min} and ${max} characters long`)
  }
  return value
}

function optionalString(obj: JsonObject, key: string, field: string, min: number, max: number): string | undefined {
  return obj[key] === undefined ? undefined : checkString(obj[key], field, min, max)
}

function checkObject(value: unknown, field: string): JsonObject {
  if (!isObject(value)) throw new ValidationError(`${field} must be an object`)
  return value
}

function checkAttributes(value: unknown): void {
  const attributes = checkObject(value, 'Attributes')
  let bytes = 0
  for (const [key, attr] of Object.entries(attributes)) {
    if (typeof attr !== 'string') throw new ValidationError(`Attributes.${key} must be a string`)
    bytes += Buffer.byteLength(key, 'utf8') + Buffer.byteLength(attr, 'utf8')
  }
  if (bytes > 32_768) throw new ValidationError('Attributes must not exceed 32768 bytes in total (keys and values)')
}

function checkInitialMessage(value: unknown): void {
  const message = checkObject(value, 'InitialMessage')
  checkString(message.ContentType, 'InitialMessage.ContentType', 1, 100)
  checkString(message.Content, 'InitialMessage.Content', 1, 16_384)
}

function checkChatDuration(value: unknown): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 60 || value > 10_080) {
    throw new ValidationError('ChatDurationInMinutes must be an integer between 60 and 10080')
  }
}

function checkSupportedContentTypes(value: unknown): void {
  if (!Array.isArray(value) || !value.every((t) => typeof t === 'string')) {
    throw new ValidationError('SupportedMessagingContentTypes must be a list of strings')
  }
  if (!value.includes('text/plain')) {
    throw new ValidationError('SupportedMessagingContentTypes must include text/plain')
  }
}

function checkPersistentChat(value: unknown, input: JsonObject): NonNullable<ValidInput['persistentChat']> {
  const chat = checkObject(value, 'PersistentChat')
  const type = chat.RehydrationType
  if (type !== 'ENTIRE_PAST_SESSION' && type !== 'FROM_SEGMENT') {
    throw new ValidationError('PersistentChat.RehydrationType must be ENTIRE_PAST_SESSION or FROM_SEGMENT')
  }
  const sourceContactId = checkString(chat.SourceContactId, 'PersistentChat.SourceContactId', 1, 256)
  if (input.RelatedContactId !== undefined) {
    throw new ValidationError('PersistentChat and RelatedContactId cannot be used together')
  }
  return { rehydrationType: type, sourceContactId }
}

/** Validates a parsed body; throws ValidationError naming the first offending field. */
export function validateStartChatInput(input: JsonObject): ValidInput {
  checkString(input.InstanceId, 'InstanceId', 1, 100)
  checkString(input.ContactFlowId, 'ContactFlowId', 1, 500)
  const participant = checkObject(input.ParticipantDetails, 'ParticipantDetails')
  checkString(participant.DisplayName, 'ParticipantDetails.DisplayName', 1, 256)
  if (input.Attributes !== undefined) checkAttributes(input.Attributes)
  if (input.InitialMessage !== undefined) checkInitialMessage(input.InitialMessage)
  const clientToken = optionalString(input, 'ClientToken', 'ClientToken', 0, 500)
  if (input.ChatDurationInMinutes !== undefined) checkChatDuration(input.ChatDurationInMinutes)
  if (input.SupportedMessagingContentTypes !== undefined) {
    checkSupportedContentTypes(input.SupportedMessagingContentTypes)
  }
  optionalString(input, 'RelatedContactId', 'RelatedContactId', 1, 256)
  const persistentChat =
    input.PersistentChat === undefined ? undefined : checkPersistentChat(input.PersistentChat, input)
  // An empty token would be a useless idempotency key; treat it as absent.
  return { clientToken: clientToken === '' ? undefined : clientToken, persistentChat }
}

// ---------------------------------------------------------------------------------------------
// Authorization: shape check of a SigV4 header, no cryptography.

function checkAuthorization(header: string | undefined): ApiError | undefined {
  if (header === undefined || header === '') {
    return { status: 403, type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' }
  }
  const refused: ApiError = {
    status: 403,
    type: 'UnrecognizedClientException',
    message: 'The security token included in the request is invalid.'
  }
  const prefix = 'AWS4-HMAC-SHA256 '
  if (!header.startsWith(prefix)) return refused
  const parts = new Map<string, string>()
  for (const part of header.slice(prefix.length).split(/,\s*/)) {
    const eq = part.indexOf('=')
    if (eq > 0) parts.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim())
  }
  const scope = (parts.get('Credential') ?? '').split('/')
  const [key, date, region, service, terminator] = scope
  const wellFormed =
    scope.length === 5 &&
    key !== '' &&
    /^\d{8}$/.test(date ?? '') &&
    region !== '' &&
    service === 'connect' &&
    terminator === 'aws4_request' &&
    (parts.get('SignedHeaders') ?? '') !== '' &&
    /^[0-9a-f]+$/.test(parts.get('Signature') ?? '')
  return wellFormed ? undefined : refused
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/** Continuous-refill token bucket, like the per-account API quota Connect enforces. */
class TokenBucket {
  private tokens: number
  private last = Date.now()
  constructor(
    private perSecond: number,
    private burst: number
  ) {
    this.tokens = burst
  }
  take(): boolean {
    this.refillToNow()
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
  /** The refill so far counts at the old rate; the new one applies from now. */
  change(perSecond: number, burst: number): void {
    this.refillToNow()
    this.perSecond = perSecond
    this.burst = burst
    this.tokens = Math.min(this.tokens, burst)
  }
  private refillToNow(): void {
    const now = Date.now()
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond)
    this.last = now
  }
  refill(): void {
    this.tokens = this.burst
    this.last = Date.now()
  }
}

interface Deferred<T> {
  promise: Promise<T>
  resolve: (value: T) => void
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

type BodyResult = { ok: true; text: string } | { ok: false; tooLarge: true }

/** Reads the body, stopping (without buffering further) once it exceeds the limit. */
function readBody(req: IncomingMessage, limit: number): Promise<BodyResult> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > limit) return Promise.resolve({ ok: false, tooLarge: true })
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let done = false
    req.on('data', (chunk: Buffer) => {
      if (done) return
      size += chunk.length
      if (size > limit) {
        done = true
        resolve({ ok: false, tooLarge: true })
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => {
      if (!done) resolve({ ok: true, text: Buffer.concat(chunks).toString('utf8') })
    })
    req.on('error', reject)
  })
}

function isRequestRate(value: unknown): value is { perSecond: number; burst: number } {
  if (!isObject(value)) return false
  const { perSecond, burst } = value
  return typeof perSecond === 'number' && perSecond > 0 && Number.isFinite(perSecond) &&
    typeof burst === 'number' && burst >= 1 && Number.isFinite(burst)
}

function isFault(value: unknown): value is Fault {
  if (!isObject(value) || typeof value.type !== 'string') return false
  switch (value.type) {
    case 'slow':
      return typeof value.delayMs === 'number' && value.delayMs >= 0
    case 'hang':
    case 'reset':
    case 'malformed':
      return true
    default:
      return (
        (ERROR_FAULT_TYPES as string[]).includes(value.type) &&
        (value.retryAfterSeconds === undefined || typeof value.retryAfterSeconds === 'number') &&
        (value.message === undefined || typeof value.message === 'string')
      )
  }
}

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
}

class Simulator implements ConnectSimulator {
  readonly requests: RecordedRequest[] = []
  readonly contacts = new Map<string, SimulatedContact>()
  url = ''
  port = 0

  private readonly server: Server
  private readonly sockets = new Set<Socket>()
  private readonly timers = new Set<NodeJS.Timeout>()
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
  private closed = false
  private readonly participantService: ParticipantService | undefined

  constructor(private readonly options: SimulatorOptions) {
    this.latencyMs = options.latencyMs ?? 0
    this.bucket = options.requestRate
      ? new TokenBucket(options.requestRate.perSecond, options.requestRate.burst)
      : undefined
    this.server = createServer((req, res) => this.route(req, res))
    if (options.participant !== false) {
      const service = new ParticipantService(this, options.participant ?? {}, options.log)
      this.participantService = service
      this.server.on('upgrade', (req, socket, head: Buffer) => service.handleUpgrade(req, socket, head))
    }
    this.server.on('connection', (socket) => {
      this.sockets.add(socket)
      socket.on('close', () => this.sockets.delete(socket))
    })
  }

  private static zeroCounters(): Omit<SimulatorStats, 'active'> {
    return { received: 0, created: 0, replayed: 0, throttled: 0, limitExceeded: 0, invalid: 0, faulted: 0 }
  }

  async listen(): Promise<void> {
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

  get participant(): ParticipantSimulator | undefined {
    return this.participantService
  }

  // --- public API ----------------------------------------------------------------------------

  script(...faults: Fault[]): void {
    this.scripted.push(...faults)
  }

  setFault(fault: Fault | null): void {
    this.persistentFault = fault
  }

  setLatency(ms: number): void {
    this.latencyMs = ms
  }

  setRequestRate(rate: { perSecond: number; burst: number } | null): void {
    if (!rate) this.bucket = undefined
    else if (this.bucket) this.bucket.change(rate.perSecond, rate.burst)
    else this.bucket = new TokenBucket(rate.perSecond, rate.burst)
  }

  endChat(contactId: string): void {
    const contact = this.contacts.get(contactId)
    if (!contact) throw new Error(`Simulator: unknown contact ${contactId}`)
    contact.endsAt = Math.min(contact.endsAt, Date.now())
    this.maybeActive.delete(contact)
    this.participantService?.contactEnded(contactId)
  }

  stats(): SimulatorStats {
    return { ...this.counters, active: this.activeCount() }
  }

  reset(): void {
    this.requests.length = 0
    this.contacts.clear()
    this.maybeActive.clear()
    this.scripted.length = 0
    this.persistentFault = null
    this.idempotency.clear()
    this.bucket?.refill()
    this.counters = Simulator.zeroCounters()
    this.participantService?.reset()
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    // Pending latency/slow timers would otherwise answer on destroyed sockets.
    for (const timer of this.timers) clearTimeout(timer)
    this.timers.clear()
    this.participantService?.close()
    const closing = new Promise<void>((resolve) => this.server.close(() => resolve()))
    // server.close() waits for open connections; hanging requests never end on their own.
    for (const socket of this.sockets) socket.destroy()
    await closing
  }

  // --- routing -------------------------------------------------------------------------------

  private route(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0]
    if (this.options.controlApi && path?.startsWith('/__sim/')) {
      this.handleControl(req, res, path).catch((err: unknown) => this.internalError(res, err))
      return
    }
    if (this.participantService && path?.startsWith('/participant/')) {
      this.participantService.handleRequest(req, res, path).catch((err: unknown) => this.internalError(res, err))
      return
    }
    if (req.method !== OPERATION_METHOD || path !== OPERATION_PATH) {
      sendJson(res, randomUUID(), 404, { Message: `Unknown operation ${req.method ?? ''} ${path ?? ''}` }, {
        'x-amzn-errortype': 'UnknownOperationException'
      })
      return
    }
    const record: RecordedRequest = { at: Date.now(), input: {}, status: 0, requestId: randomUUID() }
    const authorization = req.headers.authorization
    if (authorization !== undefined) record.authorization = authorization
    this.requests.push(record)
    this.counters.received++
    const exchange: Exchange = { req, res, record, startedAt: Date.now() }
    this.handleStartChat(exchange).catch((err: unknown) => this.internalError(res, err, record))
  }

  private async handleControl(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (this.participantService && (await this.participantService.handleControl(req, res, path))) return
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

  private async handleStartChat(ex: Exchange): Promise<void> {
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
      if (fault.type === 'slow') await this.sleep(fault.delayMs)
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

    const quotaError = this.checkActiveQuota() ?? this.checkPersistentSource(valid)
    if (quotaError) return this.refuse(ex, quotaError, quotaError.type === 'LimitExceededException' ? 'limitExceeded' : undefined)

    // Reserve the slot and the token now; the contact itself appears after the latency.
    this.reserved++
    const created = deferred<StartChatResponse>()
    if (valid.clientToken !== undefined) {
      this.idempotency.set(valid.clientToken, { expiresAt: Date.now() + IDEMPOTENCY_TTL_MS, response: created.promise })
    }
    await this.sleep(this.latencyMs)
    this.reserved--
    const response = this.createContact(input, valid)
    created.resolve(response)
    this.answer(ex, 200, response)
  }

  private nextFault(): Fault | undefined {
    return this.scripted.shift() ?? this.persistentFault ?? undefined
  }

  private applyFault(ex: Exchange, fault: Exclude<Fault, { type: 'slow' }>): void {
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
  private lookupIdempotent(clientToken: string | undefined): Promise<StartChatResponse> | undefined {
    if (clientToken === undefined) return undefined
    const entry = this.idempotency.get(clientToken)
    if (!entry) return undefined
    if (entry.expiresAt <= Date.now()) {
      this.idempotency.delete(clientToken)
      return undefined
    }
    return entry.response
  }

  private checkActiveQuota(): ApiError | undefined {
    const max = this.options.maxActiveChats
    if (max === undefined || this.activeCount() + this.reserved < max) return undefined
    return {
      status: 429,
      type: 'LimitExceededException',
      message: `The maximum number of concurrent active chats (${max}) has been reached`
    }
  }

  private checkPersistentSource(valid: ValidInput): ApiError | undefined {
    const chat = valid.persistentChat
    if (!chat) return undefined
    const source = this.contacts.get(chat.sourceContactId)
    if (!source) return { status: 404, type: 'ResourceNotFoundException', message: 'Source contact not found' }
    if (source.endsAt > Date.now()) {
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

  private createContact(input: JsonObject, valid: ValidInput): StartChatResponse {
    const now = Date.now()
    const contactId = randomUUID()
    const source = valid.persistentChat ? this.contacts.get(valid.persistentChat.sourceContactId) : undefined
    const contact: SimulatedContact = {
      contactId,
      participantId: randomUUID(),
      // Real tokens are long opaque strings; length matters for header/body size realism.
      participantToken: randomBytes(192).toString('base64url'),
      initialContactId: source?.initialContactId ?? contactId,
      createdAt: now,
      endsAt: now + (this.options.chatDurationMs ?? DEFAULT_CHAT_DURATION_MS),
      input
    }
    if (source) contact.continuedFromContactId = source.contactId
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

  private activeCount(): number {
    const now = Date.now()
    for (const contact of this.maybeActive) {
      if (contact.endsAt <= now) this.maybeActive.delete(contact)
    }
    return this.maybeActive.size
  }

  // --- answering -----------------------------------------------------------------------------

  private refuse(ex: Exchange, error: ApiError, counter?: 'invalid' | 'throttled' | 'limitExceeded'): void {
    if (counter) this.counters[counter]++
    const headers: Record<string, string> = { 'x-amzn-errortype': error.type }
    if (error.retryAfterSeconds !== undefined) headers['retry-after'] = String(error.retryAfterSeconds)
    ex.record.errorType = error.type
    this.answer(ex, error.status, { Message: error.message }, headers)
  }

  private answer(ex: Exchange, status: number, body: object, headers: Record<string, string> = {}): void {
    ex.record.status = status
    sendJson(ex.res, ex.record.requestId, status, body, headers)
    this.logAnswer(ex)
  }

  private logAnswer(ex: Exchange): void {
    const { record } = ex
    const outcome = record.errorType ?? (record.replayed ? 'replayed' : 'created')
    this.options.log?.(
      `StartChatContact ${record.status} ${outcome} requestId=${record.requestId} ${Date.now() - ex.startedAt}ms`
    )
  }

  private internalError(res: ServerResponse, err: unknown, record?: RecordedRequest): void {
    this.options.log?.(`simulator error: ${err instanceof Error ? err.message : String(err)}`)
    if (res.headersSent || res.destroyed) return
    const requestId = record?.requestId ?? randomUUID()
    if (record) {
      record.status = 500
      record.errorType = 'InternalServiceException'
    }
    sendJson(res, requestId, 500, { Message: 'Simulator error' }, { 'x-amzn-errortype': 'InternalServiceException' })
  }

  /** A delay that never keeps the process alive and is cancelled by close(). */
  private sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer)
        resolve()
      }, ms)
      timer.unref()
      this.timers.add(timer)
    })
  }
}

function safeJsonParse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

function sendJson(
  res: ServerResponse,
  requestId: string,
  status: number,
  body: unknown,
  headers: Record<string, string> = {}
): void {
  if (res.destroyed || res.headersSent) return
  const payload = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    'x-amzn-requestid': requestId,
    ...headers
  })
  res.end(payload)
}

export async function startSimulator(options: SimulatorOptions = {}): Promise<ConnectSimulator> {
  const simulator = new Simulator(options)
  await simulator.listen()
  return simulator
}
