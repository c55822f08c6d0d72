import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { Fault } from '@connect-chat-gateway/simulator'
import { build, validBody } from './helper.js'

// The fault matrix: for each way Connect can fail, 200 concurrent starts over real HTTP are
// each answered with the status the README's error table maps the fault to, within the deadline; afterwards
// the process still answers, nothing escaped as an unhandled rejection or a warning, and the same
// Idempotency-Keys retried once the fault clears give exactly one contact per key.
// Timing is only bounded (deadline plus generous slack), never measured.

const STARTS = 200
const SLACK_MS = 10_000

// Everything that escapes the request path shows up here.
const escaped: string[] = []
const onWarning = (warning: Error) => { escaped.push(`warning ${warning.name}: ${warning.message}`) }
const onRejection = (reason: unknown) => { escaped.push(`unhandledRejection: ${String(reason)}`) }
process.on('warning', onWarning)
process.on('unhandledRejection', onRejection)
t.teardown(() => {
  process.off('warning', onWarning)
  process.off('unhandledRejection', onRejection)
})

interface Row {
  name: string
  fault: Fault
  env?: Record<string, string>
  expect: Array<{ status: number; code: string }>
  /** Exact counts per code when the fault splits the answers (concurrency cap). */
  counts?: { started: number; OVERLOADED: number }
  retryAfter?: boolean
}

// Enough room for 200 concurrent calls; the last row keeps the default cap to show shedding.
const WIDE = { MAX_CONNECTIONS_PER_CLIENT: '0', MAX_OPEN_CHATS_PER_CALLER: '100000', CONNECT_MAX_CONCURRENCY: '250', CHAT_START_TIMEOUT_MS: '10000', CONNECT_ATTEMPT_TIMEOUT_MS: '5000' }
const rows: Row[] = [
  { name: 'ThrottlingException', fault: { type: 'ThrottlingException' }, expect: [{ status: 503, code: 'UPSTREAM_THROTTLED' }], retryAfter: true },
  { name: 'TooManyRequestsException', fault: { type: 'TooManyRequestsException' }, expect: [{ status: 503, code: 'UPSTREAM_THROTTLED' }], retryAfter: true },
  { name: 'LimitExceededException', fault: { type: 'LimitExceededException' }, expect: [{ status: 503, code: 'CHAT_QUOTA_REACHED' }], retryAfter: true },
  { name: 'ResourceNotFoundException', fault: { type: 'ResourceNotFoundException' }, expect: [{ status: 502, code: 'UPSTREAM_MISCONFIGURED' }] },
  { name: 'AccessDeniedException', fault: { type: 'AccessDeniedException' }, expect: [{ status: 502, code: 'UPSTREAM_MISCONFIGURED' }] },
  { name: 'InternalServiceException (500)', fault: { type: 'InternalServiceException' }, expect: [{ status: 502, code: 'UPSTREAM_FAILED' }] },
  { name: 'slow, within the attempt timeout', fault: { type: 'slow', delayMs: 300 }, expect: [{ status: 200, code: 'started' }] },
  {
    // Every attempt times out, but Connect created the contact anyway: the retry with the same key must find it.
    name: 'slow, past the attempt timeout',
    fault: { type: 'slow', delayMs: 700 },
    env: { CONNECT_ATTEMPT_TIMEOUT_MS: '300', CHAT_START_TIMEOUT_MS: '8000' },
    expect: [{ status: 502, code: 'UPSTREAM_FAILED' }]
  },
  {
    name: 'hang, past the deadline',
    fault: { type: 'hang' },
    env: { CHAT_START_TIMEOUT_MS: '1500', CONNECT_ATTEMPT_TIMEOUT_MS: '5000' },
    expect: [{ status: 504, code: 'DEADLINE_EXCEEDED' }]
  },
  {
    name: 'hang, each attempt timing out before the deadline',
    fault: { type: 'hang' },
    env: { CHAT_START_TIMEOUT_MS: '8000', CONNECT_ATTEMPT_TIMEOUT_MS: '300' },
    expect: [{ status: 502, code: 'UPSTREAM_FAILED' }]
  },
  { name: 'connection reset', fault: { type: 'reset' }, expect: [{ status: 502, code: 'UPSTREAM_FAILED' }] },
  { name: 'malformed body', fault: { type: 'malformed' }, expect: [{ status: 502, code: 'UPSTREAM_FAILED' }] },
  {
    // Slow enough that all 200 are in flight together: the default cap of 50 passes, the rest is shed.
    name: 'slow, at the default concurrency cap of 50',
    fault: { type: 'slow', delayMs: 2000 },
    env: { CONNECT_MAX_CONCURRENCY: '50', CONNECT_ATTEMPT_TIMEOUT_MS: '5000' },
    expect: [{ status: 200, code: 'started' }, { status: 503, code: 'OVERLOADED' }],
    // At least the cap's worth start; the rest is shed (more start if early ones finish first).
    counts: { started: 50, OVERLOADED: 1 }
  }
]

interface Answer { status: number; code: string; retryAfter: string | null; ms: number; contactId?: string; body: string }

async function post (url: string, key: string): Promise<Answer> {
  const began = Date.now()
  const res = await fetch(`${url}/chat/start`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': key },
    body: JSON.stringify(validBody({ Attributes: { topic: key } }))
  })
  const body = await res.text()
  const json = JSON.parse(body)
  return {
    status: res.status,
    code: res.status === 200 ? 'started' : json.code,
    retryAfter: res.headers.get('retry-after'),
    ms: Date.now() - began,
    contactId: json.data?.startChatResult?.ContactId,
    body
  }
}

/** Names of the upstream errors the service logged, in order. */
function upstreamErrors (logs: string): string[] {
  return logs.split('\n').filter((l) => l.includes('"upstream"')).map((l) => {
    try { return String(JSON.parse(l).upstream?.errorName) } catch { return 'unparsable log line' }
  })
}

/** Runs fn over items with at most `width` at a time (the browser retries, not a stampede). */
async function pool<T, R> (items: T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i] as T)
    }
  }))
  return out
}

for (const row of rows) {
  const expected = row.expect.map((e) => `${e.status} ${e.code}`).join(' / ')
  t.test(`${row.name}: ${STARTS} concurrent starts -> ${expected}; afterwards one contact per key`, async (t) => {
    const env = { ...WIDE, RATE_LIMIT_MAX: '100000', ...row.env }
    const { app, sim, config, logs } = await build(t, env)
    const url = await app.listen({ port: 0, host: '127.0.0.1' })
    const keys = Array.from({ length: STARTS }, () => randomUUID())
    const escapedBefore = escaped.length

    sim.setFault(row.fault)
    const answers = await Promise.all(keys.map((key) => post(url, key)))

    const allowed = new Set(row.expect.map((e) => `${e.status} ${e.code}`))
    const off = answers.filter((a) => !allowed.has(`${a.status} ${a.code}`))
    t.same(off.map((a) => `${a.status} ${a.code}`), [], `every answer is ${expected}`)
    if (row.counts) {
      const counts: Record<string, number> = {}
      for (const a of answers) counts[a.code] = (counts[a.code] ?? 0) + 1
      t.ok((counts.started ?? 0) >= row.counts.started, `at least ${row.counts.started} started (${counts.started})`)
      t.ok((counts.OVERLOADED ?? 0) >= row.counts.OVERLOADED, `and the rest shed (${counts.OVERLOADED} OVERLOADED)`)
      t.equal((counts.started ?? 0) + (counts.OVERLOADED ?? 0), STARTS, 'nothing else')
    }
    const slowest = Math.max(...answers.map((a) => a.ms))
    t.ok(slowest <= config.CHAT_START_TIMEOUT_MS + SLACK_MS, `all answered within the deadline plus slack (slowest ${slowest} ms)`)
    const no503RetryAfter = answers.filter((a) => a.status === 503 && !/^\d+$/.test(a.retryAfter ?? ''))
    t.equal(no503RetryAfter.length, 0, 'every 503 carries Retry-After in seconds')
    if (row.retryAfter) t.ok(answers.every((a) => a.retryAfter !== null), 'Retry-After on every answer')
    const leaky = answers.filter((a) => a.status !== 200 && /Exception|requestid|\bstack\b|arn:aws/i.test(a.body))
    t.equal(leaky.length, 0, 'no upstream error text in any error body')

    // The fault clears; the widget retries each logical start with its key. The storm has drained
    // the SDK's retry quota, so on a loaded machine an attempt that times out is not retried and
    // answers 502: the widget tries that key again, as it would after any 5xx.
    sim.setFault(null)
    const upstreamErrorsBefore = upstreamErrors(logs()).length
    let retried = await pool(keys, 25, (key) => post(url, key))
    for (let round = 0; round < 3 && retried.some((a) => a.status !== 200); round++) {
      retried = await pool(keys, 25, async (key) => {
        const previous = retried[keys.indexOf(key)] as Answer
        return previous.status === 200 ? previous : post(url, key)
      })
    }
    t.same(retried.filter((a) => a.status !== 200).map((a) => `${a.status} ${a.code}`), [],
      `the process answers 200 again (upstream errors meanwhile: ${upstreamErrors(logs()).slice(upstreamErrorsBefore).join(', ') || 'none'})`)
    const perToken = new Map<string, number>()
    for (const contact of sim.contacts.values()) {
      const token = String(contact.input.ClientToken)
      perToken.set(token, (perToken.get(token) ?? 0) + 1)
    }
    t.equal(perToken.size, STARTS, 'one ClientToken per key')
    t.ok([...perToken.values()].every((n) => n === 1), 'exactly one contact per key')
    t.equal(sim.contacts.size, STARTS, `${STARTS} contacts in all`)
    // Starts that succeeded during the fault are handed the same contact again, not a new one.
    const changed = answers.filter((a, i) => a.contactId !== undefined && retried[i]?.contactId !== a.contactId)
    t.equal(changed.length, 0, 'a start that succeeded during the fault gets the same contact on retry')

    t.same(escaped.slice(escapedBefore), [], 'no unhandled rejection or warning')
  })
}

t.test('the process saw no unhandled rejection or warning during the whole matrix', async (t) => {
  t.same(escaped, [])
})
