// The API contract (README, API) written out a second time, independently of the route's schema, so the fuzz
// properties can tell for any generated request whether the service must refuse it (4xx, Connect
// never called) or start it (200, exactly one call carrying what was sent).

export const ALLOWED_ATTRIBUTES = ['topic', 'language', 'constructor', 'toString', 'valueOf']
export const BODY_LIMIT = 16 * 1024
const CONTENT_TYPES = new Set([
  'text/plain', 'text/markdown', 'application/json',
  'application/vnd.amazonaws.connect.message.interactive',
  'application/vnd.amazonaws.connect.message.interactive.response'
])
const IGNORED = ['InstanceId', 'ConnectInstanceId', 'ContactFlowId', 'Username']
/** ANONYMOUS_MAX_CHAT_DURATION_MINUTES's default. */
const ANONYMOUS_MAX_DURATION = 180
const FIELDS = new Set(['ParticipantDetails', 'Attributes', 'InitialMessage', 'SupportedMessagingContentTypes', 'ChatDurationInMinutes', 'PersistentChat',
  'ParticipantConfiguration', 'RelatedContactToken', ...IGNORED])
// Control characters: C0, DEL, C1, and the line/paragraph separators (README: "control characters refused").
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001F\u007F-\u009F\u2028\u2029]/
const ATTRIBUTE_KEY = /^[A-Za-z0-9_-]+$/
// README: bidi controls refused; a name must keep a visible character once format and filler
// characters (and whitespace) are removed.
const BIDI = /[\u200E\u200F\u202A-\u202E\u2066-\u2069]/
const INVISIBLE = /[\p{Cf}\p{Z}\s\u115F\u1160\u3164\uFFA0\u2800]/gu

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
function hasLoneSurrogate (s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0xD800 && c <= 0xDBFF) {
      const next = s.charCodeAt(i + 1)
      if (!(next >= 0xDC00 && next <= 0xDFFF)) return true
      i++
    } else if (c >= 0xDC00 && c <= 0xDFFF) {
      return true
    }
  }
  return false
}

/** What Connect must receive for an accepted body (the parts the browser decides). */
export interface Expected {
  DisplayName: string
  Attributes?: Record<string, string>
  InitialMessage?: { ContentType: string; Content: string }
  SupportedMessagingContentTypes?: string[]
  ChatDurationInMinutes?: number
  ParticipantConfiguration?: { ResponseMode: 'COMPLETE' }
}

export type Verdict = { accept: true; expected: Expected } | { accept: false; why: string }

const chars = (s: string) => [...s].length
const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const refuse = (why: string): Verdict => ({ accept: false, why })

function onlyKeys (o: Record<string, unknown>, keys: string[]): boolean {
  return Object.keys(o).every((k) => keys.includes(k))
}

/** Any `__proto__` key, or a `constructor` holding `prototype`, anywhere: refused before validation. */
function poisoned (root: unknown): boolean {
  // Iterative: the fuzz nests thousands of levels deep.
  const stack = [root]
  while (stack.length > 0) {
    const v = stack.pop()
    if (Array.isArray(v)) { stack.push(...v); continue }
    if (!isPlainObject(v)) continue
    for (const key of Object.keys(v)) {
      if (key === '__proto__') return true
      if (key === 'constructor' && isPlainObject(v[key]) && Object.hasOwn(v[key] as object, 'prototype')) return true
      stack.push(v[key])
    }
  }
  return false
}

/** The verdict for a body as parsed from the wire text (JSON.parse keeps `__proto__` as an own key). */
export function judgeText (raw: string | Buffer): Verdict {
  if (Buffer.byteLength(raw) > BODY_LIMIT) return refuse('body too large')
  const text = raw.toString()
  let parsed: unknown
  // A leading byte-order mark is dropped by the body parser, as browsers do.
  try { parsed = JSON.parse(text.replace(/^\uFEFF/, '')) } catch { return refuse('not JSON') }
  if (poisoned(parsed)) return refuse('prototype poisoning')
  return judge(parsed)
}

export function judge (body: unknown): Verdict {
  if (!isPlainObject(body)) return refuse('not an object')
  for (const key of Object.keys(body)) if (!FIELDS.has(key)) return refuse(`unknown field ${key}`)

  const pd = body.ParticipantDetails
  if (!isPlainObject(pd) || !onlyKeys(pd, ['DisplayName'])) return refuse('ParticipantDetails')
  const name = pd.DisplayName
  if (typeof name !== 'string' || chars(name) < 1 || chars(name) > 1024 || CONTROL.test(name)) return refuse('DisplayName')
  const displayName = name.trim()
  if (displayName.length === 0 || chars(displayName) > 256) return refuse('DisplayName length')
  if (hasLoneSurrogate(displayName) || BIDI.test(displayName) || displayName.replace(INVISIBLE, '') === '') return refuse('DisplayName unreadable')
  const expected: Expected = { DisplayName: displayName }

  if (body.Attributes !== undefined) {
    const a = body.Attributes
    if (!isPlainObject(a) || Object.keys(a).length > 200) return refuse('Attributes')
    let bytes = 0
    for (const [k, v] of Object.entries(a)) {
      if (typeof v !== 'string' || !ATTRIBUTE_KEY.test(k) || k.length > 128 || !ALLOWED_ATTRIBUTES.includes(k)) return refuse(`Attributes.${k}`)
      bytes += Buffer.byteLength(k) + Buffer.byteLength(v)
    }
    if (bytes > 32_768) return refuse('Attributes size')
    if (Object.keys(a).length > 0) expected.Attributes = a as Record<string, string>
  }
  if (body.InitialMessage !== undefined) {
    const m = body.InitialMessage
    if (!isPlainObject(m) || !onlyKeys(m, ['ContentType', 'Content'])) return refuse('InitialMessage')
    if (m.ContentType !== 'text/plain' && m.ContentType !== 'text/markdown') return refuse('InitialMessage.ContentType')
    if (typeof m.Content !== 'string' || chars(m.Content) < 1 || chars(m.Content) > 16_384) return refuse('InitialMessage.Content')
    expected.InitialMessage = { ContentType: m.ContentType, Content: m.Content }
  }
  if (body.SupportedMessagingContentTypes !== undefined) {
    const s = body.SupportedMessagingContentTypes
    if (!Array.isArray(s) || s.length < 1 || s.length > CONTENT_TYPES.size) return refuse('SupportedMessagingContentTypes')
    if (!s.every((x) => typeof x === 'string' && CONTENT_TYPES.has(x)) || new Set(s).size !== s.length || !s.includes('text/plain')) {
      return refuse('SupportedMessagingContentTypes items')
    }
    expected.SupportedMessagingContentTypes = s as string[]
  }
  if (body.ChatDurationInMinutes !== undefined) {
    const d = body.ChatDurationInMinutes
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 60 || d > 10_080) return refuse('ChatDurationInMinutes')
  }
  // The fuzzed callers are anonymous: every chat goes out with a duration, at most their cap.
  expected.ChatDurationInMinutes = Math.min(typeof body.ChatDurationInMinutes === 'number' ? body.ChatDurationInMinutes : ANONYMOUS_MAX_DURATION, ANONYMOUS_MAX_DURATION)
  // Without a resume token this service issued, no persistent chat is started.
  if (body.PersistentChat !== undefined) return refuse('PersistentChat without a valid resume token')
  // Nor a related chat without a related-chat token it issued (the fuzzed profile hands out none).
  if (body.RelatedContactToken !== undefined) return refuse('RelatedContactToken without a valid token')
  // Whole replies anyone may ask for; streamed ones only a profile turns on (the fuzzed one does not).
  if (body.ParticipantConfiguration !== undefined) {
    const c = body.ParticipantConfiguration
    if (!isPlainObject(c) || !onlyKeys(c, ['ResponseMode'])) return refuse('ParticipantConfiguration')
    if (c.ResponseMode !== undefined && c.ResponseMode !== 'COMPLETE') return refuse('ParticipantConfiguration.ResponseMode')
    if (c.ResponseMode === 'COMPLETE') expected.ParticipantConfiguration = { ResponseMode: 'COMPLETE' }
  }
  for (const key of IGNORED) {
    const v = body[key]
    if (v !== undefined && (typeof v !== 'string' || chars(v) > 500)) return refuse(key)
  }
  return { accept: true, expected }
}

export const validIdempotencyKey = (key: string | undefined) => key === undefined || /^[A-Za-z0-9_-]{16,64}$/.test(key)

/** The essence of a Content-Type the service parses as JSON, or undefined (415, or 400 when malformed). */
export function jsonMediaType (header: string | undefined): boolean {
  if (header === undefined) return false
  const essence = header.split(';')[0]?.trim().toLowerCase()
  return essence === 'application/json' || essence === 'text/plain' || essence === 'application/x-www-form-urlencoded'
}
