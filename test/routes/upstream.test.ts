import t from 'tap'
import type { Fault } from '@connect-chat-gateway/simulator'
import { fakeClock } from '../fake-clock.js'
import { build, startChat, until, validBody } from '../helper.js'

// The error table's rows that depend on what Connect answers. Real SDK, real HTTP, simulator faults.
const rows: Array<{ name: string; faults: Fault[]; status: number; code: string; retryAfter?: boolean; attempts: number }> = [
  { name: 'ThrottlingException until retries run out', faults: Array(3).fill({ type: 'ThrottlingException' }), status: 503, code: 'UPSTREAM_THROTTLED', retryAfter: true, attempts: 3 },
  { name: 'TooManyRequestsException until retries run out', faults: Array(3).fill({ type: 'TooManyRequestsException' }), status: 503, code: 'UPSTREAM_THROTTLED', retryAfter: true, attempts: 3 },
  { name: 'LimitExceededException (chat quota) is not retried', faults: [{ type: 'LimitExceededException' }], status: 503, code: 'CHAT_QUOTA_REACHED', retryAfter: true, attempts: 1 },
  { name: 'ResourceNotFoundException (wrong instance or flow)', faults: [{ type: 'ResourceNotFoundException' }], status: 502, code: 'UPSTREAM_MISCONFIGURED', attempts: 1 },
  { name: 'AccessDeniedException (role lacks connect:StartChatContact)', faults: [{ type: 'AccessDeniedException' }], status: 502, code: 'UPSTREAM_MISCONFIGURED', attempts: 1 },
  { name: 'InvalidParameterException', faults: [{ type: 'InvalidParameterException' }], status: 502, code: 'UPSTREAM_MISCONFIGURED', attempts: 1 },
  { name: 'InvalidRequestException', faults: [{ type: 'InvalidRequestException' }], status: 502, code: 'UPSTREAM_MISCONFIGURED', attempts: 1 },
  { name: 'InternalServiceException 500 until retries run out', faults: Array(3).fill({ type: 'InternalServiceException' }), status: 502, code: 'UPSTREAM_FAILED', attempts: 3 },
  { name: 'connection reset until retries run out', faults: Array(3).fill({ type: 'reset' }), status: 502, code: 'UPSTREAM_FAILED', attempts: 3 },
  { name: 'malformed success body', faults: [{ type: 'malformed' }], status: 502, code: 'UPSTREAM_FAILED', attempts: 1 }
]

for (const row of rows) {
  t.test(`${row.name} -> ${row.status} ${row.code} after ${row.attempts} attempt(s)`, async (t) => {
    const { app, sim, logs } = await build(t)
    sim.script(...row.faults)
    const res = await startChat(app, validBody())
    t.equal(res.statusCode, row.status)
    const json = res.json()
    t.same(Object.keys(json).sort(), ['code', 'error', 'message', 'statusCode'])
    t.equal(json.code, row.code)
    if (row.retryAfter) t.match(res.headers['retry-after'], /^\d+$/)
    else t.notOk(res.headers['retry-after'])
    t.equal(sim.requests.length, row.attempts, 'attempts reaching Connect')
    // Never the upstream's words or ids in the body; the request id goes to the log instead.
    for (const r of sim.requests) {
      t.notMatch(res.body, r.requestId)
    }
    t.notMatch(res.body, /Exception|Connect said|stack/i)
    // The log carries what support needs: Connect's request id when it answered, else the error.
    const line = logs().split('\n').find((l) => l.includes('chat start failed upstream'))
    t.ok(line, 'the failure is logged')
    t.match(JSON.parse(line ?? '{}'), { level: row.status === 502 ? 50 : 40, code: row.code, upstream: { errorName: /\w/ } })
    const last = sim.requests.at(-1)!
    if (last.status > 0) t.match(line, last.requestId, 'with the upstream request id')
    else t.equal(row.faults[0]?.type, 'reset', 'only a reset connection leaves no request id to log')
  })
}

t.test('throttled twice then succeeds -> 200 with one contact', async (t) => {
  const { app, sim } = await build(t)
  sim.script({ type: 'TooManyRequestsException' }, { type: 'ThrottlingException' })
  const res = await startChat(app, validBody())
  t.equal(res.statusCode, 200)
  t.equal(sim.requests.length, 3)
  t.equal(sim.contacts.size, 1)
})

t.test('502 misconfiguration is logged at error level with the upstream request id', async (t) => {
  const { app, sim, logs } = await build(t)
  sim.script({ type: 'ResourceNotFoundException' })
  await startChat(app, validBody())
  const line = logs().split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((l) => l.upstream)
  t.equal(line?.level, 50)
  t.equal(line?.upstream.errorName, 'ResourceNotFoundException')
  t.equal(line?.upstream.requestId, sim.requests[0]?.requestId)
})

t.test('Retry-After from the upstream hint is passed on', async (t) => {
  const { app, sim } = await build(t, { CONNECT_MAX_ATTEMPTS: '1' })
  sim.script({ type: 'LimitExceededException', retryAfterSeconds: 17 })
  const res = await startChat(app, validBody())
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '17')
})

t.test('retries carry one ClientToken, with and without an Idempotency-Key', async (t) => {
  const { app, sim } = await build(t)
  sim.script({ type: 'InternalServiceException' }, { type: 'reset' })
  t.equal((await startChat(app, validBody())).statusCode, 200)
  const tokens = new Set(sim.requests.map((r) => r.clientToken))
  t.equal(sim.requests.length, 3)
  t.equal(tokens.size, 1)
  t.ok([...tokens][0])

  sim.reset()
  sim.script({ type: 'ThrottlingException' })
  t.equal((await startChat(app, validBody(), { 'idempotency-key': 'click-1-0123456789' })).statusCode, 200)
  t.equal(sim.requests.length, 2)
  t.equal(new Set(sim.requests.map((r) => r.clientToken)).size, 1)
})

t.test('the same Idempotency-Key gives the same contact; a new key a new one', async (t) => {
  const { app, sim } = await build(t)
  const [a, b] = await Promise.all([
    startChat(app, validBody(), { 'idempotency-key': 'key-A-0123456789ab' }),
    startChat(app, validBody(), { 'idempotency-key': 'key-A-0123456789ab' })
  ])
  const c = await startChat(app, validBody(), { 'idempotency-key': 'key-B-0123456789ab' })
  t.equal(a.json().data.startChatResult.ContactId, b.json().data.startChatResult.ContactId)
  t.equal(a.json().data.startChatResult.ParticipantToken, b.json().data.startChatResult.ParticipantToken)
  t.not(c.json().data.startChatResult.ContactId, a.json().data.startChatResult.ContactId)
  t.equal(sim.contacts.size, 2)
})

t.test('the same key with a different request does not hand out the first chat', async (t) => {
  const { app, sim } = await build(t)
  const a = await startChat(app, validBody(), { 'idempotency-key': 'shared-0123456789ab' })
  const b = await startChat(app, { ParticipantDetails: { DisplayName: 'Mallory' } }, { 'idempotency-key': 'shared-0123456789ab' })
  t.not(a.json().data.startChatResult.ParticipantToken, b.json().data.startChatResult.ParticipantToken)
  t.equal(sim.contacts.size, 2)
  t.notMatch(sim.requests[0]?.clientToken ?? '', 'shared', 'the raw key is not the ClientToken')
})

t.test('a hanging upstream gives 504 within the deadline', async (t) => {
  const { app, sim } = await build(t, { CHAT_START_TIMEOUT_MS: '1500', CONNECT_ATTEMPT_TIMEOUT_MS: '1000' })
  sim.setFault({ type: 'hang' })
  const began = Date.now()
  const res = await startChat(app, validBody())
  const took = Date.now() - began
  t.equal(res.statusCode, 504)
  t.equal(res.json().code, 'DEADLINE_EXCEEDED')
  t.ok(took < 1500 + 1000, `answered by the deadline plus slack (${took} ms)`)
})

t.test('a start\'s deadline runs on the app\'s clock, from the moment the route takes the request', async (t) => {
  // A clock a minute behind the wall: a deadline taken from Date.now() would lie a minute further on it.
  const time = fakeClock(Date.now() - 60_000)
  const { app, sim } = await build(t, { CHAT_START_TIMEOUT_MS: '2000', CONNECT_ATTEMPT_TIMEOUT_MS: '60000', CONNECT_MAX_ATTEMPTS: '1' }, { deps: { clock: time.clock } })
  sim.setFault({ type: 'hang' })
  let answered = false
  const pending = startChat(app, validBody()).then((res) => { answered = true; return res })
  await until('the call reaches Connect', () => sim.requests.length === 1, 10_000)
  await time.tick(1_999)
  t.notOk(answered, 'not before the deadline')
  await time.tick(1)
  await until('the answer', () => answered, 10_000)
  const res = await pending
  t.equal(res.statusCode, 504)
  t.equal(res.json().code, 'DEADLINE_EXCEEDED')
})

t.test('the per-attempt timeout really fires: a hung first attempt is retried and succeeds', async (t) => {
  const { app, sim } = await build(t, { CHAT_START_TIMEOUT_MS: '5000', CONNECT_ATTEMPT_TIMEOUT_MS: '300' })
  sim.script({ type: 'hang' })
  const res = await startChat(app, validBody())
  t.equal(res.statusCode, 200)
  t.equal(sim.requests.length, 2)
  t.equal(sim.contacts.size, 1)
})

t.test('slow but within the deadline -> 200', async (t) => {
  const { app, sim } = await build(t)
  sim.script({ type: 'slow', delayMs: 300 })
  t.equal((await startChat(app, validBody())).statusCode, 200)
})

t.test('upstream 5xx never leaks the SDK error text to the caller', async (t) => {
  const { app, sim } = await build(t, { CONNECT_MAX_ATTEMPTS: '1' })
  sim.script({ type: 'InternalServiceException', message: 'internal detail arn:aws:connect:us-east-1:123456789012:instance/x' })
  const res = await startChat(app, validBody())
  t.equal(res.statusCode, 502)
  t.notMatch(res.body, /arn:aws|123456789012|internal detail/)
})
