// The wire protocol of StartChatContact as the simulator speaks it: the operation, the input
// limits Connect documents, the shape of a SigV4 Authorization header, and JSON in and out.
import type { IncomingMessage, ServerResponse } from 'node:http'

// Wire constants

export const OPERATION_METHOD = 'PUT'
export const OPERATION_PATH = '/contact/chat'
export const MAX_BODY_BYTES = 1024 * 1024

/** A refusal the simulator answers with: HTTP status, `x-amzn-errortype`, message. */
export interface ApiError {
  status: number
  type: string
  message: string
  retryAfterSeconds?: number
}

export interface StartChatResponse {
  ContactId: string
  ParticipantId: string
  ParticipantToken: string
  ContinuedFromContactId?: string
}

// ---------------------------------------------------------------------------------------------
// Input validation (the limits Connect documents for StartChatContact)

export type JsonObject = Record<string, unknown>

/** The validated parts of the input the simulator acts on. */
export interface ValidInput {
  clientToken?: string
  persistentChat?: { rehydrationType: 'ENTIRE_PAST_SESSION' | 'FROM_SEGMENT'; sourceContactId: string }
  relatedContactId?: string
}

export class ValidationError extends Error {}

export function isObject (value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Connect counts characters, not UTF-16 code units. */
function charLength (value: string): number {
  let n = 0
  for (const _ of value) n++
  return n
}

function checkString (value: unknown, field: string, min: number, max: number): string {
  if (typeof value !== 'string') throw new ValidationError(`${field} must be a string`)
  const len = charLength(value)
  if (len < min || len > max) {
    throw new ValidationError(`${field} must be between ${min} and ${max} characters long`)
  }
  return value
}

function optionalString (obj: JsonObject, key: string, field: string, min: number, max: number): string | undefined {
  return obj[key] === undefined ? undefined : checkString(obj[key], field, min, max)
}

function checkObject (value: unknown, field: string): JsonObject {
  if (!isObject(value)) throw new ValidationError(`${field} must be an object`)
  return value
}

function checkAttributes (value: unknown): void {
  const attributes = checkObject(value, 'Attributes')
  let bytes = 0
  for (const [key, attr] of Object.entries(attributes)) {
    if (typeof attr !== 'string') throw new ValidationError(`Attributes.${key} must be a string`)
    bytes += Buffer.byteLength(key, 'utf8') + Buffer.byteLength(attr, 'utf8')
  }
  if (bytes > 32_768) throw new ValidationError('Attributes must not exceed 32768 bytes in total (keys and values)')
}

function checkInitialMessage (value: unknown): void {
  const message = checkObject(value, 'InitialMessage')
  checkString(message.ContentType, 'InitialMessage.ContentType', 1, 100)
  checkString(message.Content, 'InitialMessage.Content', 1, 16_384)
}

function checkChatDuration (value: unknown): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 60 || value > 10_080) {
    throw new ValidationError('ChatDurationInMinutes must be an integer between 60 and 10080')
  }
}

function checkSupportedContentTypes (value: unknown): void {
  if (!Array.isArray(value) || !value.every((t) => typeof t === 'string')) {
    throw new ValidationError('SupportedMessagingContentTypes must be a list of strings')
  }
  if (!value.includes('text/plain')) {
    throw new ValidationError('SupportedMessagingContentTypes must include text/plain')
  }
}

function checkPersistentChat (value: unknown, input: JsonObject): NonNullable<ValidInput['persistentChat']> {
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

const INTERACTIVE = 'application/vnd.amazonaws.connect.message.interactive'
const INTERACTIVE_RESPONSE = `${INTERACTIVE}.response`
const SEGMENT_VALUE_TYPES = new Set(['ValueString', 'ValueInteger', 'ValueMap', 'ValueList', 'ValueArn'])

/** One SegmentAttributeValue: a union, so exactly one member is set. */
function checkSegmentValue (value: unknown, field: string, depth: number): void {
  if (depth > 5) throw new ValidationError(`${field} is nested too deeply`)
  const member = checkObject(value, field)
  const set = Object.keys(member).filter((k) => member[k] !== undefined && member[k] !== null)
  if (set.length !== 1 || !SEGMENT_VALUE_TYPES.has(set[0]!)) {
    throw new ValidationError(`${field} must set exactly one of ValueString, ValueInteger, ValueMap, ValueList, ValueArn`)
  }
  const [type] = set
  const inner = member[type!]
  if (type === 'ValueString' || type === 'ValueArn') checkString(inner, `${field}.${type}`, 1, 1024)
  else if (type === 'ValueInteger') {
    if (!Number.isInteger(inner)) throw new ValidationError(`${field}.ValueInteger must be an integer`)
  } else if (type === 'ValueMap') {
    for (const [key, v] of Object.entries(checkObject(inner, `${field}.ValueMap`))) {
      checkString(key, `${field}.ValueMap key`, 1, 128)
      checkSegmentValue(v, `${field}.ValueMap.${key}`, depth + 1)
    }
  } else {
    if (!Array.isArray(inner)) throw new ValidationError(`${field}.ValueList must be a list`)
    inner.forEach((v, i) => checkSegmentValue(v, `${field}.ValueList[${i}]`, depth + 1))
  }
}

function checkSegmentAttributes (value: unknown, input: JsonObject): void {
  const attributes = checkObject(value, 'SegmentAttributes')
  for (const [key, v] of Object.entries(attributes)) {
    checkString(key, 'SegmentAttributes key', 1, 128)
    checkSegmentValue(v, `SegmentAttributes.${key}`, 1)
  }
  // A guide's steps are interactive messages; Connect will not start a guide chat that cannot show them.
  const subtype = attributes['connect:Subtype']
  if (isObject(subtype) && subtype.ValueString === 'connect:Guide') {
    const types = Array.isArray(input.SupportedMessagingContentTypes) ? input.SupportedMessagingContentTypes : []
    if (!types.includes(INTERACTIVE) || !types.includes(INTERACTIVE_RESPONSE)) {
      throw new ValidationError(`SegmentAttributes connect:Subtype connect:Guide requires SupportedMessagingContentTypes to contain ${INTERACTIVE} and ${INTERACTIVE_RESPONSE}`)
    }
  }
}

function checkDisconnectOnCustomerExit (value: unknown): void {
  if (!Array.isArray(value) || value.some((v) => v !== 'AGENT')) {
    throw new ValidationError('DisconnectOnCustomerExit must be a list of participant types (AGENT)')
  }
}

function checkParticipantConfiguration (value: unknown): void {
  const configuration = checkObject(value, 'ParticipantConfiguration')
  const mode = configuration.ResponseMode
  if (mode !== undefined && mode !== 'COMPLETE' && mode !== 'INCREMENTAL') {
    throw new ValidationError('ParticipantConfiguration.ResponseMode must be COMPLETE or INCREMENTAL')
  }
}

/** Validates a parsed body; throws ValidationError naming the first offending field. */
export function validateStartChatInput (input: JsonObject): ValidInput {
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
  const relatedContactId = optionalString(input, 'RelatedContactId', 'RelatedContactId', 1, 256)
  const persistentChat =
    input.PersistentChat === undefined ? undefined : checkPersistentChat(input.PersistentChat, input)
  optionalString(input, 'CustomerId', 'CustomerId', 0, 128)
  if (input.SegmentAttributes !== undefined) checkSegmentAttributes(input.SegmentAttributes, input)
  if (input.DisconnectOnCustomerExit !== undefined) checkDisconnectOnCustomerExit(input.DisconnectOnCustomerExit)
  if (input.ParticipantConfiguration !== undefined) checkParticipantConfiguration(input.ParticipantConfiguration)
  // An empty token would be a useless idempotency key; treat it as absent.
  return {
    clientToken: clientToken === '' ? undefined : clientToken,
    persistentChat,
    ...(relatedContactId !== undefined ? { relatedContactId } : {})
  }
}

// ---------------------------------------------------------------------------------------------
// Authorization: shape check of a SigV4 header, no cryptography.

export function checkAuthorization (header: string | undefined): ApiError | undefined {
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

export type BodyResult = { ok: true; text: string } | { ok: false; tooLarge: true }

/** Reads the body, stopping (without buffering further) once it exceeds the limit. */
export function readBody (req: IncomingMessage, limit: number): Promise<BodyResult> {
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

export function safeJsonParse (text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

export function sendJson (
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
