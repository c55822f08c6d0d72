import fc from 'fast-check'
import t from 'tap'
import { startChat } from '../helper.js'
import { applyPatches, oddString, patch, validBody } from './arbitraries.js'
import { checkUpstreamInput, fuzzer, runs, seedOptions, type Fuzzer } from './harness.js'
import { judgeText } from './oracle.js'

// Property tests over the body of POST /chat/start (README, API): for any text, the answer is 200 with
// exactly one Connect call carrying what the contract lets the browser decide, or a 4xx with no call.
// Never a 5xx, never a crash, never a modified prototype.

/** Sends one body and checks it against the oracle; throws (so fast-check shrinks) on a violation. */
async function exchange (f: Fuzzer, text: string, headers: Record<string, string> = {}) {
  const verdict = judgeText(text)
  const res = await startChat(f.app, text, headers)
  const calls = f.calls()
  f.assertNoPollution()
  const why = verdict.accept ? 'accepted' : verdict.why
  if (res.statusCode >= 500) throw new Error(`${res.statusCode} for a body the oracle calls ${why}: ${res.body}`)
  if (!verdict.accept) {
    if (res.statusCode < 400) throw new Error(`${res.statusCode} for a body the contract refuses (${why})`)
    if (calls !== 0) throw new Error(`Connect called ${calls} time(s) for a refused body (${why})`)
    const json = res.json()
    if (typeof json.code !== 'string' || json.statusCode !== res.statusCode) throw new Error(`error body not in our shape: ${res.body}`)
    return res
  }
  if (res.statusCode !== 200) throw new Error(`${res.statusCode} ${res.body} for a valid body`)
  if (calls !== 1) throw new Error(`Connect called ${calls} time(s) for one valid start`)
  const problem = checkUpstreamInput(f.sim.requests.at(-1)?.input ?? {}, verdict.expected, f.config)
  if (problem) throw new Error(`Connect did not receive what was sent: ${problem}`)
  return res
}

const stats = () => ({ accepted: 0, refused: 0 })
const count = (s: ReturnType<typeof stats>, text: string) => { if (judgeText(text).accept) s.accepted++; else s.refused++ }

t.test('random JSON values -> 4xx, never 5xx, never a Connect call', async (t) => {
  const f = await fuzzer(t)
  const s = stats()
  await fc.assert(fc.asyncProperty(fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.object({ maxDepth: 3 })), async (value) => {
    const text = JSON.stringify(value) ?? 'null'
    count(s, text)
    await exchange(f, text)
  }), { numRuns: runs(1500), ...seedOptions() })
  t.equal(f.sim.requests.length, s.accepted, `Connect called once per accepted body (${s.refused} refused, ${s.accepted} accepted)`)
})

t.test('valid bodies with unusual Unicode -> 200, and Connect receives exactly what was sent', async (t) => {
  const f = await fuzzer(t)
  const s = stats()
  await fc.assert(fc.asyncProperty(validBody, fc.option(fc.stringMatching(/^[A-Za-z0-9_-]{16,64}$/)), async (body, key) => {
    const text = JSON.stringify(body)
    count(s, text)
    await exchange(f, text, key === null ? {} : { 'idempotency-key': key })
  }), { numRuns: runs(1500), ...seedOptions() })
  // The generator is meant to make valid bodies; if the oracle refused most, this property proves little.
  t.ok(s.accepted > s.refused * 3, `mostly valid: ${s.accepted} accepted, ${s.refused} refused`)
})

t.test('mutations of valid bodies -> 200 exactly when the contract still accepts them, else 4xx without a call', async (t) => {
  const f = await fuzzer(t)
  const s = stats()
  await fc.assert(fc.asyncProperty(validBody, fc.array(patch, { minLength: 1, maxLength: 3 }), async (body, patches) => {
    const text = JSON.stringify(applyPatches(body, patches))
    count(s, text)
    await exchange(f, text)
  }), { numRuns: runs(3000), ...seedOptions() })
  t.ok(s.accepted > 100 && s.refused > 1000, `both sides exercised: ${s.accepted} accepted, ${s.refused} refused`)
})

// `__proto__` and `constructor.prototype` written as raw JSON (JSON.stringify of an object literal
// would drop or rename them), at every depth, with and without \u escapes the parser must see through.
const protoKey = fc.constantFrom('__proto__', '\\u005f_proto__', '__pro\\u0074o__', 'constructor', 'constru\\u0063tor', 'prototype', 'toString', 'hasOwnProperty')
const pollutingValue = fc.constantFrom('{"polluted":"yes"}', '{"prototype":{"polluted":"yes"}}', '{"isAdmin":true}', '"yes"', '[{"__proto__":{"polluted":1}}]', 'null')
const slot = fc.constantFrom('top', 'ParticipantDetails', 'Attributes', 'InitialMessage', 'PersistentChat')

t.test('prototype-polluting keys anywhere -> refused or harmless, never pollution', async (t) => {
  const f = await fuzzer(t)
  const s = stats()
  await fc.assert(fc.asyncProperty(validBody, protoKey, pollutingValue, slot, async (body, key, value, where) => {
    const b = structuredClone(body) as unknown as Record<string, Record<string, unknown>>
    const marker = 'X_MARK_X'
    const target = where === 'top' ? b : (b[where] ??= {})
    target[marker] = 0
    const text = JSON.stringify(b).replace(`"${marker}":0`, `"${key}":${value}`)
    count(s, text)
    await exchange(f, text)
  }), { numRuns: runs(1500), ...seedOptions() })
  t.ok(s.refused > 0 && s.accepted > 0, `${s.refused} refused, ${s.accepted} accepted (constructor/toString attributes are allowed keys)`)
  f.assertNoPollution()
  t.equal(({} as Record<string, unknown>).polluted, undefined)
})

t.test('deep nesting and long strings -> 4xx, never 5xx or a crash', async (t) => {
  const f = await fuzzer(t)
  const nested = fc.record({
    depth: fc.integer({ min: 1, max: 8_000 }),
    open: fc.constantFrom('[', '{"a":'),
    where: fc.constantFrom('top', 'Attributes', 'DisplayName', 'constructor')
  }).map(({ depth, open, where }) => {
    const close = open === '[' ? ']' : '}'
    const deep = open.repeat(depth) + '1' + close.repeat(depth)
    if (where === 'top') return deep
    if (where === 'Attributes') return `{"ParticipantDetails":{"DisplayName":"a"},"Attributes":{"topic":${deep}}}`
    if (where === 'constructor') return `{"ParticipantDetails":{"DisplayName":"a"},"constructor":${deep}}`
    return `{"ParticipantDetails":{"DisplayName":${deep}}}`
  })
  const long = fc.record({
    n: fc.oneof(fc.constantFrom(256, 257, 1024, 1025, 16_384, 16_385), fc.integer({ min: 0, max: 20_000 })),
    ch: fc.constantFrom('a', ' ', 'é', '😀', '\\u0000', '\\n'),
    field: fc.constantFrom('DisplayName', 'Content', 'topic', 'InstanceId')
  }).map(({ n, ch, field }) => {
    const s = ch.repeat(n)
    if (field === 'DisplayName') return `{"ParticipantDetails":{"DisplayName":"${s}"}}`
    if (field === 'Content') return `{"ParticipantDetails":{"DisplayName":"a"},"InitialMessage":{"ContentType":"text/plain","Content":"${s}"}}`
    if (field === 'topic') return `{"ParticipantDetails":{"DisplayName":"a"},"Attributes":{"topic":"${s}"}}`
    return `{"ParticipantDetails":{"DisplayName":"a"},"InstanceId":"${s}"}`
  })
  const manyKeys = fc.integer({ min: 1, max: 1_500 }).map((n) =>
    `{"ParticipantDetails":{"DisplayName":"a"},"Attributes":{${Array.from({ length: n }, (_, i) => `"k${i}":"v"`).join(',')}}}`)
  const s = stats()
  await fc.assert(fc.asyncProperty(fc.oneof(nested, long, manyKeys, oddString(200)), async (text) => {
    count(s, text)
    await exchange(f, text)
  }), { numRuns: runs(700), ...seedOptions() })
  t.equal(f.sim.requests.length, s.accepted, `Connect called once per accepted body (${s.refused} refused, ${s.accepted} accepted)`)
  t.equal((await f.app.inject('/health/live')).statusCode, 200, 'and the app still answers')
})
