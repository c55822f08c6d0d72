import fc from 'fast-check'
import { ALLOWED_ATTRIBUTES } from './oracle.js'

// Generators for the fuzz properties: valid chat-start bodies, and ways to break them.

/** Characters that trip up naive code: controls, separators, invisibles, combining marks, lone surrogates, astral. */
export const ODD_CHARS = [
  '\u0000', '\u0007', '\t', '\n', '\r', '\u001b', '\u001f', '\u007f', '\u0085', '\u009f', '\u00a0', '\u00ad',
  '\u0301', '\u200b', '\u200d', '\u200e', '\u202e', '\u2028', '\u2029', '\u2060', '\u3000', '\ufeff', '\ufffd',
  '\ud800', '\udbff', '\udc00', '\udfff', '😀', '👩‍👩‍👧', '𝕏', '\u{10ffff}', 'ﷺ', 'ß', 'İ', '"', '\\', '/', '<', '&', '%00', '${x}', ' '
]

/** Any string: odd characters mixed with any code point (lone surrogates included) and plain text. */
export const oddString = (maxLength = 40) => fc.string({
  unit: fc.oneof(fc.constantFrom(...ODD_CHARS), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }), fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 })),
  maxLength
})

/** Text that the contract accepts as a display name more often than not: no controls, some odd but printable characters. */
const printable = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }) },
  // Odd but readable: bidi controls and lone surrogates are refused, so mutations bring those in.
  { weight: 1, arbitrary: fc.constantFrom('\u00a0', '\u0301', '\u200b', '\u3000', '\ufeff', '😀', '𝕏', ' ', '"', '\\') }
)
export const displayName = fc.string({ unit: printable, minLength: 1, maxLength: 60 })

const CONNECT_CONTENT_TYPES = [
  'text/plain', 'text/markdown', 'application/json',
  'application/vnd.amazonaws.connect.message.interactive',
  'application/vnd.amazonaws.connect.message.interactive.response'
]

/** Bodies every Amazon Connect sample client could send, in all their optional variety. */
export const validBody = fc.record({
  ParticipantDetails: fc.record({ DisplayName: displayName }),
  Attributes: fc.dictionary(fc.constantFrom(...ALLOWED_ATTRIBUTES), oddString(30), { maxKeys: 4 }),
  InitialMessage: fc.record({ ContentType: fc.constantFrom('text/plain', 'text/markdown'), Content: oddString(80).filter((s) => s.length > 0) }),
  SupportedMessagingContentTypes: fc.shuffledSubarray(CONNECT_CONTENT_TYPES.slice(1)).chain((rest) =>
    fc.shuffledSubarray(['text/plain', ...rest], { minLength: rest.length + 1 })),
  ChatDurationInMinutes: fc.integer({ min: 60, max: 10_080 }),
  ParticipantConfiguration: fc.record({ ResponseMode: fc.constant('COMPLETE') }, { requiredKeys: [] }),
  InstanceId: fc.string({ maxLength: 40 }),
  ConnectInstanceId: fc.string({ maxLength: 40 }),
  ContactFlowId: fc.string({ maxLength: 40 }),
  Username: fc.string({ maxLength: 40 })
}, { requiredKeys: ['ParticipantDetails'] })

// --- mutations -------------------------------------------------------------------------------

export const DELETE = Symbol('delete')
export type Patch = { path: Array<string | number>; value: unknown }

const fieldPath = fc.constantFrom<Array<string | number>>(
  ['ParticipantDetails'], ['ParticipantDetails', 'DisplayName'], ['ParticipantDetails', 'Name'],
  ['Attributes'], ['Attributes', 'topic'], ['Attributes', 'language'], ['Attributes', 'constructor'], ['Attributes', 'hasOwnProperty'],
  ['Attributes', 'secret-flag'], ['Attributes', 'bad key'], ['Attributes', 'ключ'],
  ['InitialMessage'], ['InitialMessage', 'ContentType'], ['InitialMessage', 'Content'], ['InitialMessage', 'Extra'],
  ['SupportedMessagingContentTypes'], ['SupportedMessagingContentTypes', 0], ['SupportedMessagingContentTypes', 5],
  ['ChatDurationInMinutes'], ['PersistentChat'], ['PersistentChat', 'RehydrationType'], ['PersistentChat', 'SourceContactId'],
  ['InstanceId'], ['ContactFlowId'], ['Username'], ['RelatedContactId'], ['RelatedContactToken'], ['SegmentAttributes'], ['CustomerId'],
  ['DisconnectOnCustomerExit'], ['ParticipantConfiguration'], ['ParticipantConfiguration', 'ResponseMode'], ['ClientToken'], ['participantDetails'], ['']
)

const patchValue = fc.oneof(
  fc.constant<unknown>(DELETE),
  oddString(),
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom<unknown>(59, 60, 60.5, 10_080, 10_081, -0, 1e21, -1, 0, '', ' ', '   \u3000', true, null, [], {}, 'text/plain', 'text/markdown', 'TEXT/PLAIN', 'COMPLETE', 'INCREMENTAL', ['AGENT']),
  fc.constantFrom('text/plain', 'application/json', 'text/html').map((x) => [x]),
  fc.nat({ max: 1_100 }).map((n) => 'é'.repeat(n)),
  fc.constantFrom(256, 257, 500, 501, 1024, 1025).map((n) => 'x'.repeat(n)),
  fc.constantFrom('ENTIRE_PAST_SESSION', 'FROM_SEGMENT').map((r) => ({ RehydrationType: r, SourceContactId: 'c-1' }))
)

export const patch: fc.Arbitrary<Patch> = fc.record({
  path: fc.oneof({ weight: 5, arbitrary: fieldPath }, { weight: 1, arbitrary: fc.array(fc.oneof(oddString(8), fc.nat(3)), { minLength: 1, maxLength: 3 }) }),
  value: patchValue
})

/** Applies patches to a deep copy, creating objects along the way; `__proto__` is set as an own key like JSON.parse does. */
export function applyPatches (body: unknown, patches: Patch[]): unknown {
  let root = structuredClone(body) as Record<string | number, unknown>
  for (const { path, value } of patches) {
    let node: Record<string | number, unknown> = root
    for (const [i, key] of path.entries()) {
      const last = i === path.length - 1
      if (last) {
        if (value === DELETE) delete node[key]
        else Object.defineProperty(node, key, { value, enumerable: true, writable: true, configurable: true })
        break
      }
      const next = Object.hasOwn(node, key) ? node[key] : undefined
      if (typeof next !== 'object' || next === null) {
        const created = {}
        Object.defineProperty(node, key, { value: created, enumerable: true, writable: true, configurable: true })
        node = created
      } else {
        node = next as Record<string | number, unknown>
      }
    }
    if (typeof root !== 'object' || root === null) root = {}
  }
  return root
}
