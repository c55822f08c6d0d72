import fc from 'fast-check'
import t from 'tap'
import { ORIGIN } from '../helper.js'
import { applyPatches, patch, validBody } from './arbitraries.js'
import { checkUpstreamInput, fuzzer, runs, seedOptions } from './harness.js'
import { jsonMediaType, judgeText, validIdempotencyKey } from './oracle.js'

// Property tests over everything around the body: content types, header values, raw bytes.
// The contract (content types, Idempotency-Key, 413/415, Origin) decides; never a 5xx, and
// Connect is called only when every part of the request is acceptable.

/** Any byte a client can put in a header value: visible ASCII, space, tab and obs-text. */
const headerValue = fc.string({
  unit: fc.integer({ min: 0x09, max: 0xff }).filter((c) => c === 0x09 || (c >= 0x20 && c !== 0x7f)).map((c) => String.fromCharCode(c)),
  maxLength: 80
})

const contentType = fc.oneof(
  fc.constantFrom(
    'application/json', 'application/json; charset=utf-8', 'Application/JSON', 'application/json;charset=UTF-8',
    'text/plain', 'text/plain;charset=UTF-8', 'TEXT/PLAIN; charset=utf-8', 'application/x-www-form-urlencoded',
    'application/x-www-form-urlencoded; charset=UTF-8', 'application/jsonx', 'application/json-patch+json',
    'application/vnd.api+json', 'text/json', 'text/html', 'application/xml', 'multipart/form-data; boundary=x',
    'application/octet-stream', '*/*', 'application/*', ';', 'application/json;', 'application/json; charset=',
    ' application/json', 'application /json', 'text/plain; charset=utf-16', 'application/json, text/plain', ''
  ),
  headerValue,
  fc.constant(undefined)
)

const origin = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.constant(ORIGIN) },
  { weight: 2, arbitrary: fc.constantFrom('null', 'https://evil.example', `${ORIGIN}.evil.example`, `${ORIGIN}/`, 'HTTPS://SHOP.EXAMPLE.COM', 'http://shop.example.com', '') },
  { weight: 1, arbitrary: headerValue }
)

const idempotencyKey = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{16,64}$/) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,15}$/) },
  { weight: 2, arbitrary: headerValue },
  { weight: 1, arbitrary: fc.constantFrom('x'.repeat(65), 'a b', 'ключ', '', ' key ') }
)

const authorization = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: headerValue.map((v) => `Bearer ${v}`) },
  { weight: 1, arbitrary: headerValue }
)

// Bodies as bytes: valid JSON, mutated JSON, JSON cut short, with a BOM, invalid UTF-8, empty.
const body = fc.oneof(
  { weight: 3, arbitrary: validBody.map((b) => Buffer.from(JSON.stringify(b))) },
  { weight: 2, arbitrary: fc.tuple(validBody, fc.array(patch, { minLength: 1, maxLength: 2 })).map(([b, p]) => Buffer.from(JSON.stringify(applyPatches(b, p)))) },
  { weight: 1, arbitrary: fc.tuple(validBody, fc.nat()).map(([b, n]) => { const s = Buffer.from(JSON.stringify(b)); return s.subarray(0, n % s.length) }) },
  { weight: 1, arbitrary: validBody.map((b) => Buffer.from(`\uFEFF${JSON.stringify(b)}`)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 4 }).map((a) => Buffer.from(`{"ParticipantDetails":{"DisplayName":"a${Buffer.from(a).toString('latin1')}"}}`, 'latin1')) }
)

t.test('odd content types, header values and bytes -> never 5xx; Connect only for an acceptable request', async (t) => {
  const f = await fuzzer(t)
  const seen = { started: 0, refused: 0, statuses: new Set<number>() }
  const request = fc.record({ body, contentType, origin, idempotencyKey, authorization })
  await fc.assert(fc.asyncProperty(request, async (r) => {
    const headers: Record<string, string> = {}
    if (r.contentType !== undefined) headers['content-type'] = r.contentType
    if (r.origin !== undefined) headers.origin = r.origin
    if (r.idempotencyKey !== undefined) headers['idempotency-key'] = r.idempotencyKey
    if (r.authorization !== undefined) headers.authorization = r.authorization
    const res = await f.app.inject({ method: 'POST', url: '/chat/start', headers, payload: r.body })
    const calls = f.calls()
    f.assertNoPollution()
    seen.statuses.add(res.statusCode)

    const verdict = judgeText(r.body)
    // Whether the JSON text is readable at all depends on the parser reached, so only an empty
    // or unparseable body with an unsupported type may be 415 rather than 400.
    const acceptable = verdict.accept && jsonMediaType(r.contentType) && validIdempotencyKey(r.idempotencyKey) &&
      (r.origin === undefined || r.origin === ORIGIN)
    if (res.statusCode >= 500) throw new Error(`${res.statusCode}: ${res.body}`)
    if (res.statusCode === 200) {
      seen.started++
      if (!acceptable) throw new Error('200 for a request the contract refuses')
      if (calls !== 1) throw new Error(`${calls} Connect calls for one start`)
      const problem = verdict.accept && checkUpstreamInput(f.sim.requests.at(-1)?.input ?? {}, verdict.expected, f.config)
      if (problem) throw new Error(`Connect did not receive what was sent: ${problem}`)
      return
    }
    seen.refused++
    if (calls !== 0) throw new Error(`Connect called for a request answered ${res.statusCode}`)
    if (res.statusCode < 400) throw new Error(`unexpected ${res.statusCode}`)
    // A customer token the service cannot verify may be refused (401); anything else acceptable must start.
    if (acceptable && !(r.authorization !== undefined && res.statusCode === 401)) {
      throw new Error(`${res.statusCode} ${res.body} for an acceptable request`)
    }
    if (r.origin !== undefined && r.origin !== ORIGIN && res.statusCode !== 403) {
      throw new Error(`${res.statusCode} for an unlisted Origin, expected 403`)
    }
  }), { numRuns: runs(2500), ...seedOptions() })
  t.ok(seen.started > 50 && seen.refused > 1000, `${seen.started} started, ${seen.refused} refused; statuses ${[...seen.statuses].sort().join(' ')}`)
})
