import { readFileSync } from 'node:fs'
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'
import { ConfigError, parseDurationMs, parseOrigins, type OriginList } from '../settings.js'
import { ATTRIBUTE_KEY, Attributes } from '../shapes.js'
import { segmentAttributesProblem, type ProfileContactFields, type SegmentAttributes } from '../contact-fields.js'

// The widget profile file (WIDGETS_FILE): one entry per widget embedded somewhere, each with its own
// flow, origins, attributes and trust. Secrets never live in it: `secretEnv` names the variable.

export const WIDGET_ID = '^[a-z0-9-]{1,32}$'
/** The profile the environment describes; a file cannot redefine it. */
export const DEFAULT_WIDGET = 'default'
/** Enough for any real deployment, and a bound on the `widget` metric label. */
export const MAX_WIDGETS = 100
const MAX_FILE_BYTES = 1024 * 1024

const Text = (maxLength: number, description?: string) => Type.String({ minLength: 1, maxLength, ...(description ? { description } : {}) })

export const WidgetProfileSchema = Type.Object({
  id: Type.String({ pattern: WIDGET_ID, description: 'path segment of POST /chat/start/:widget; a-z, 0-9 and -, up to 32' }),
  contactFlowId: Text(500, 'contact flow of this widget\'s chats'),
  instanceId: Type.Optional(Text(100, 'Connect instance; CONNECT_INSTANCE_ID when left out')),
  allowedOrigins: Type.Array(Text(300), { minItems: 1, maxItems: 100, description: 'as ALLOWED_ORIGINS: exact origins, https://*.example.com, or ["none"]' }),
  allowedAttributes: Type.Optional(Type.Array(Type.String({ pattern: ATTRIBUTE_KEY, minLength: 1, maxLength: 128 }), { maxItems: 200, uniqueItems: true })),
  attributes: Type.Optional(Attributes),
  featurePermissions: Type.Optional(Type.Object({
    MESSAGING_MARKDOWN: Type.Optional(Type.Boolean()),
    ATTACHMENTS: Type.Optional(Type.Boolean())
  }, { additionalProperties: false })),
  persistentChat: Type.Optional(Type.Enum(['verified', 'unverified', 'off'])),
  customerToken: Type.Optional(Type.Object({
    required: Type.Optional(Type.Boolean()),
    secretEnv: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,127}$', description: 'name of the environment variable holding the HS256 secret' })),
    jwksUrl: Type.Optional(Text(2000)),
    audience: Type.Optional(Text(500)),
    issuer: Type.Optional(Text(500))
  }, { additionalProperties: false })),
  rateLimit: Type.Optional(Type.Object({
    max: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    window: Text(50, 'milliseconds or a duration such as "1 minute"')
  }, { additionalProperties: false })),
  humanCheck: Type.Optional(Type.Object({
    type: Type.Enum(['off', 'pow', 'turnstile', 'hcaptcha', 'recaptcha'], { description: 'as HUMAN_CHECK, for this widget\'s anonymous callers' }),
    when: Type.Optional(Type.Enum(['always', 'busy'], { description: 'as HUMAN_CHECK_WHEN (default busy)' })),
    secretEnv: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,127}$', description: 'name of the environment variable holding the provider\'s secret (else HUMAN_CHECK_SECRET)' }))
  }, { additionalProperties: false })),
  chatDurationInMinutes: Type.Optional(Type.Integer({ minimum: 60, maximum: 10_080, description: 'the longest chat this widget opens: a larger ChatDurationInMinutes is lowered to it, and it is the duration when the request names none' })),
  queueId: Type.Optional(Text(100, 'queue whose hours and agents GET /chat/availability/:widget reports; CONNECT_QUEUE_ID when left out and the instance is the default one')),
  refuseWhenClosed: Type.Optional(Type.Boolean({ description: 'answer 503 CHAT_CLOSED while the queue is closed; REFUSE_WHEN_CLOSED when left out' })),
  segmentAttributes: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'SegmentAttributes of every chat, in Connect\'s shape: {"connect:Subtype": {"ValueString": "connect:Guide"}}' })),
  disconnectOnCustomerExit: Type.Optional(Type.Array(Type.Enum(['AGENT']), { minItems: 1, maxItems: 1, description: '["AGENT"]: the agent is disconnected when the customer leaves, so post-chat surveys run' })),
  responseMode: Type.Optional(Type.Enum(['COMPLETE', 'INCREMENTAL'], { description: 'ParticipantConfiguration.ResponseMode; INCREMENTAL streams AI-agent replies' })),
  claimAttributes: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 128 }), Type.String({ pattern: ATTRIBUTE_KEY, minLength: 1, maxLength: 128 }), { maxProperties: 50, description: 'verified customer token claim -> contact attribute' })),
  customerIdClaim: Type.Optional(Text(128, 'the verified customer token claim sent as CustomerId (default sub)')),
  relatedChats: Type.Optional(Type.Boolean({ description: 'hand out data.relatedToken, so a later start can continue from the chat as a related contact' }))
}, { additionalProperties: false })

export const WidgetFileSchema = Type.Object({
  widgets: Type.Array(WidgetProfileSchema, { maxItems: MAX_WIDGETS })
}, { additionalProperties: false })

type WidgetProfileEntry = Static<typeof WidgetProfileSchema>

/** One profile as the file describes it, checked, with its secret looked up: plain data. */
export interface WidgetSpec {
  id: string
  contactFlowId: string
  instanceId?: string
  origins: OriginList
  allowedAttributes: string[]
  attributes: Record<string, string>
  featurePermissions: { MESSAGING_MARKDOWN?: boolean; ATTACHMENTS?: boolean }
  persistentChat?: 'verified' | 'unverified' | 'off'
  customerToken?: { required: boolean; secret?: string; jwksUrl?: string; audience?: string; issuer?: string }
  rateLimit?: { max: number; windowMs: number }
  chatDurationInMinutes?: number
  humanCheck?: HumanCheckSpec
  queueId?: string
  refuseWhenClosed?: boolean
  contactFields: ProfileContactFields
  relatedChats: boolean
}

/** A widget's own human check; `secret` from its secretEnv (else the deployment's HUMAN_CHECK_SECRET applies). */
export interface HumanCheckSpec { kind: 'off' | 'pow' | 'turnstile' | 'hcaptcha' | 'recaptcha'; when: 'always' | 'busy'; secret?: string }

export type EnvLookup = Record<string, string | undefined>

/** `/widgets/0/allowedOrigins/1` -> `widgets[0].allowedOrigins[1]`: the JSON path an operator finds in the file. */
function jsonPath (pointer: string, extra?: string): string {
  const segments = pointer.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
  if (extra !== undefined) segments.push(extra)
  let path = ''
  for (const s of segments) path += /^\d+$/.test(s) ? `[${s}]` : /^[A-Za-z_$][\w$]*$/.test(s) ? `${path ? '.' : ''}${s}` : `[${JSON.stringify(s.slice(0, 60))}]`
  return path || '(file)'
}

function schemaProblems (data: unknown): string[] {
  const lines: string[] = []
  for (const e of Value.Errors(WidgetFileSchema, data)) {
    // additionalProperties reports the same field again as a `false` schema.
    if (e.keyword === 'boolean') continue
    const params = e.params as { additionalProperties?: string[]; requiredProperties?: string[] }
    if (e.keyword === 'additionalProperties') {
      for (const name of params.additionalProperties ?? []) lines.push(`${jsonPath(e.instancePath, name)}: is not a known field`)
    } else if (e.keyword === 'required') {
      for (const name of params.requiredProperties ?? []) lines.push(`${jsonPath(e.instancePath, name)}: is required`)
    } else {
      lines.push(`${jsonPath(e.instancePath)}: ${e.message}`)
    }
    if (lines.length >= 20) break
  }
  return [...new Set(lines)]
}

/** The checks a schema cannot express, each naming the JSON path; the first problem stops the load. */
function spec (entry: WidgetProfileEntry, at: string, env: EnvLookup): WidgetSpec {
  const origins = parseOrigins(entry.allowedOrigins.map((o) => o.trim()), `${at}.allowedOrigins`)
  const token = entry.customerToken
  let customerToken: WidgetSpec['customerToken']
  if (token) {
    const secret = token.secretEnv === undefined ? undefined : env[token.secretEnv]
    if (token.secretEnv !== undefined && (secret === undefined || secret === '')) {
      throw new ConfigError(`${at}.customerToken.secretEnv: the environment variable ${token.secretEnv} is not set`)
    }
    if (secret !== undefined && secret.length < 32) {
      throw new ConfigError(`${at}.customerToken.secretEnv: ${token.secretEnv} must hold at least 32 characters`)
    }
    if (token.jwksUrl !== undefined && !URL.canParse(token.jwksUrl)) throw new ConfigError(`${at}.customerToken.jwksUrl: not a URL`)
    if (token.required && secret === undefined && token.jwksUrl === undefined) {
      throw new ConfigError(`${at}.customerToken.required: needs secretEnv or jwksUrl`)
    }
    customerToken = {
      required: token.required ?? false,
      ...(secret !== undefined ? { secret } : {}),
      ...(token.jwksUrl !== undefined ? { jwksUrl: token.jwksUrl } : {}),
      ...(token.audience !== undefined ? { audience: token.audience } : {}),
      ...(token.issuer !== undefined ? { issuer: token.issuer } : {})
    }
  }
  let humanCheck: HumanCheckSpec | undefined
  if (entry.humanCheck) {
    const { type, when = 'busy', secretEnv } = entry.humanCheck
    const secret = secretEnv === undefined ? undefined : env[secretEnv]
    if (secretEnv !== undefined && (secret === undefined || secret === '')) {
      throw new ConfigError(`${at}.humanCheck.secretEnv: the environment variable ${secretEnv} is not set`)
    }
    if (type !== 'off' && type !== 'pow' && secret === undefined && !env.HUMAN_CHECK_SECRET) {
      throw new ConfigError(`${at}.humanCheck.secretEnv: ${type} needs the provider's secret (secretEnv, or HUMAN_CHECK_SECRET)`)
    }
    humanCheck = { kind: type, when, ...(secret !== undefined ? { secret } : {}) }
  }
  const segmentProblem = entry.segmentAttributes === undefined ? undefined : segmentAttributesProblem(entry.segmentAttributes, `${at}.segmentAttributes`)
  if (segmentProblem) throw new ConfigError(segmentProblem)
  const contactFields: ProfileContactFields = {
    ...(entry.segmentAttributes !== undefined ? { segmentAttributes: entry.segmentAttributes as SegmentAttributes } : {}),
    ...(entry.disconnectOnCustomerExit !== undefined ? { disconnectOnCustomerExit: entry.disconnectOnCustomerExit } : {}),
    ...(entry.responseMode !== undefined ? { responseMode: entry.responseMode } : {}),
    claimAttributes: Object.assign(Object.create(null) as Record<string, string>, entry.claimAttributes ?? {}),
    customerIdClaim: entry.customerIdClaim ?? 'sub'
  }
  return {
    id: entry.id,
    contactFlowId: entry.contactFlowId,
    ...(entry.instanceId !== undefined ? { instanceId: entry.instanceId } : {}),
    origins,
    allowedAttributes: entry.allowedAttributes ?? [],
    // Without a prototype, so keys such as __proto__ stay data.
    attributes: Object.assign(Object.create(null) as Record<string, string>, entry.attributes ?? {}),
    featurePermissions: entry.featurePermissions ?? {},
    ...(entry.persistentChat !== undefined ? { persistentChat: entry.persistentChat } : {}),
    ...(customerToken ? { customerToken } : {}),
    ...(entry.rateLimit
      ? { rateLimit: { max: entry.rateLimit.max, windowMs: parseDurationMs(`${at}.rateLimit.window`, entry.rateLimit.window, 'ms', '60000, "30 seconds" or "1 minute"') } }
      : {}),
    ...(entry.chatDurationInMinutes !== undefined ? { chatDurationInMinutes: entry.chatDurationInMinutes } : {}),
    ...(humanCheck ? { humanCheck } : {}),
    ...(entry.queueId !== undefined ? { queueId: entry.queueId } : {}),
    ...(entry.refuseWhenClosed !== undefined ? { refuseWhenClosed: entry.refuseWhenClosed } : {}),
    contactFields,
    relatedChats: entry.relatedChats ?? false
  }
}

/** A profile file's text to profiles; throws ConfigError naming the JSON path of the first problem(s). */
export function parseWidgetFile (text: string, env: EnvLookup): WidgetSpec[] {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`WIDGETS_FILE: not valid JSON (${(err as Error).message.slice(0, 200)})`)
  }
  const problems = schemaProblems(data)
  if (problems.length > 0) throw new ConfigError(`WIDGETS_FILE is not valid:\n  ${problems.join('\n  ')}`)
  const entries = (data as Static<typeof WidgetFileSchema>).widgets
  const seen = new Set<string>()
  return entries.map((entry, i) => {
    const at = `widgets[${i}]`
    if (entry.id === DEFAULT_WIDGET) throw new ConfigError(`${at}.id: "${DEFAULT_WIDGET}" is the profile the environment describes; choose another id`)
    if (seen.has(entry.id)) throw new ConfigError(`${at}.id: "${entry.id}" is used by an earlier widget`)
    seen.add(entry.id)
    return spec(entry, at, env)
  })
}

/** Reads and parses WIDGETS_FILE; every failure, unreadable file included, is a ConfigError. */
export function readWidgetFile (path: string, env: EnvLookup): WidgetSpec[] {
  let text: string
  try {
    const bytes = readFileSync(path)
    if (bytes.length > MAX_FILE_BYTES) throw new ConfigError(`WIDGETS_FILE: ${path} is larger than ${MAX_FILE_BYTES} bytes`)
    text = bytes.toString('utf8')
  } catch (err) {
    if (err instanceof ConfigError) throw err
    throw new ConfigError(`WIDGETS_FILE: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
  return parseWidgetFile(text, env)
}
