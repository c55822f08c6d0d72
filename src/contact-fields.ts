// The StartChatContact fields only the operator decides (a widget profile, or the environment for
// the default one): their shapes, checked once when the profile is read, so a typo stops start-up
// instead of turning every chat start into Connect's InvalidParameterException.

/** Connect's SegmentAttributeValue: exactly one of its members. */
export interface SegmentAttributeValue {
  ValueString?: string
  ValueInteger?: number
  ValueArn?: string
  ValueMap?: Record<string, SegmentAttributeValue>
  ValueList?: SegmentAttributeValue[]
}
export type SegmentAttributes = Record<string, SegmentAttributeValue>

/** Set by the gateway alone, from a verified customer token: a profile may not claim it for everyone. */
export const CUSTOMER_AUTHENTICATION = 'connect:CustomerAuthentication'
export const SUBTYPE = 'connect:Subtype'
export const GUIDE = 'connect:Guide'
/** What a guide's step-by-step views are sent as; Connect refuses connect:Guide without both. */
export const INTERACTIVE_TYPES = [
  'application/vnd.amazonaws.connect.message.interactive',
  'application/vnd.amazonaws.connect.message.interactive.response'
] as const

// Connect's segment attribute keys are system keys such as connect:Subtype.
const SEGMENT_KEY = /^[A-Za-z0-9_:.-]{1,128}$/
const VALUE_MEMBERS = ['ValueString', 'ValueInteger', 'ValueArn', 'ValueMap', 'ValueList'] as const
const MAX_DEPTH = 4

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** The first problem with a segment attribute map in Connect's shape, as `path: problem`; undefined when valid. */
export function segmentAttributesProblem (value: unknown, at: string): string | undefined {
  if (!isRecord(value)) return `${at}: must be an object of {"key": {"ValueString": "…"}}`
  const keys = Object.keys(value)
  if (keys.length > 50) return `${at}: at most 50 entries`
  for (const key of keys) {
    if (!SEGMENT_KEY.test(key)) return `${at}.${key.slice(0, 60)}: not a valid key (letters, digits, _ - : . up to 128)`
    if (key === CUSTOMER_AUTHENTICATION) return `${at}.${key}: is set by the gateway when a verified customer token comes with the start`
    const problem = valueProblem(value[key], `${at}.${key}`, 1)
    if (problem) return problem
  }
  return undefined
}

function valueProblem (value: unknown, at: string, depth: number): string | undefined {
  if (!isRecord(value)) return `${at}: must be an object with one of ${VALUE_MEMBERS.join(', ')}`
  const members = Object.keys(value)
  if (members.length !== 1 || !(VALUE_MEMBERS as readonly string[]).includes(members[0]!)) {
    return `${at}: must have exactly one of ${VALUE_MEMBERS.join(', ')}`
  }
  const v = value[members[0]!]
  switch (members[0]) {
    case 'ValueString':
    case 'ValueArn':
      return typeof v === 'string' && v.length >= 1 && v.length <= 1024 ? undefined : `${at}.${members[0]}: must be a string of 1 to 1024 characters`
    case 'ValueInteger':
      return Number.isSafeInteger(v) ? undefined : `${at}.ValueInteger: must be an integer`
    case 'ValueMap': {
      if (depth >= MAX_DEPTH || !isRecord(v)) return `${at}.ValueMap: must be an object, nested at most ${MAX_DEPTH} deep`
      for (const [key, inner] of Object.entries(v)) {
        if (!SEGMENT_KEY.test(key)) return `${at}.ValueMap.${key.slice(0, 60)}: not a valid key`
        const problem = valueProblem(inner, `${at}.ValueMap.${key}`, depth + 1)
        if (problem) return problem
      }
      return undefined
    }
    default: {
      if (depth >= MAX_DEPTH || !Array.isArray(v) || v.length > 50) return `${at}.ValueList: must be a list of at most 50 values, nested at most ${MAX_DEPTH} deep`
      for (const [i, inner] of v.entries()) {
        const problem = valueProblem(inner, `${at}.ValueList[${i}]`, depth + 1)
        if (problem) return problem
      }
      return undefined
    }
  }
}

/** Whether these segment attributes ask for Connect's step-by-step guides. */
export const isGuide = (attributes: SegmentAttributes | undefined) => attributes?.[SUBTYPE]?.ValueString === GUIDE

/** The SEGMENT_ATTRIBUTES setting's JSON text, checked; throws with `name: problem`. */
export function parseSegmentAttributes (text: string, name: string): SegmentAttributes {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new Error(`${name}: not valid JSON (e.g. {"connect:Subtype":{"ValueString":"connect:Guide"}})`)
  }
  const problem = segmentAttributesProblem(value, name)
  if (problem) throw new Error(problem)
  return value as SegmentAttributes
}

/** CLAIM_ATTRIBUTES: `claim:attribute` pairs, comma-separated (`tier:customerTier,acct:accountNumber`). */
export function parseClaimAttributes (text: string, name: string): Record<string, string> {
  const map: Record<string, string> = Object.create(null)
  for (const pair of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^([^:\s]{1,128}):([A-Za-z0-9_-]{1,128})$/.exec(pair)
    if (!m) throw new Error(`${name}: "${pair.slice(0, 60)}" is not claim:attribute (e.g. tier:customerTier)`)
    map[m[1]!] = m[2]!
  }
  return { ...map }
}

/** What one profile decides of a chat's StartChatContact fields beyond its flow and attributes. */
export interface ProfileContactFields {
  segmentAttributes?: SegmentAttributes
  disconnectOnCustomerExit?: Array<'AGENT'>
  /** The default ParticipantConfiguration.ResponseMode; a client may always ask for COMPLETE. */
  responseMode?: 'COMPLETE' | 'INCREMENTAL'
  /** Verified customer token claim -> contact attribute. */
  claimAttributes: Readonly<Record<string, string>>
  /** The verified customer token claim sent as CustomerId. */
  customerIdClaim: string
}
