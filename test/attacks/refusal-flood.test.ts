import { once } from 'node:events'
import { connect } from 'node:net'
import t from 'tap'
import { build, listenLocal, metricSample, ORIGIN, validBody } from '../helper.js'
import { fakeClock } from '../fake-clock.js'

// A flood of refusals costs a bounded number of log lines: a few per client and kind, then one
// summary per window; the metrics count every refusal, and a real error in the middle is still logged.

const INVALID = JSON.stringify({ ParticipantDetails: { DisplayName: '' }, Extra: 1 })
const request = (origin: string) =>
  'POST /chat/start HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n' +
  `Origin: ${origin}\r\nContent-Length: ${Buffer.byteLength(INVALID)}\r\n\r\n${INVALID}`

/**
 * `count` requests pipelined on one keep-alive connection from `from`, written in batches so neither
 * side buffers the whole flood; resolves with the status line of every answer.
 */
async function flood (port: number, from: string, origin: string, count: number): Promise<string[]> {
  const socket = connect({ port, host: '127.0.0.1', localAddress: from })
  await once(socket, 'connect')
  const statuses: string[] = []
  let rest = ''
  let answered = 0
  let batchDone: (() => void) | undefined
  socket.setEncoding('utf8').on('data', (chunk: string) => {
    // The answers' bodies are our JSON error shape, which never contains a status line.
    const text = rest + chunk
    const found = text.match(/HTTP\/1\.1 \d{3}/g) ?? []
    statuses.push(...found)
    answered += found.length
    // Kept for the next chunk: what follows the last status line, or a tail that may start one.
    rest = found.length > 0 ? text.slice(text.lastIndexOf('HTTP/1.1 ') + 12) : text.slice(-11)
    batchDone?.()
  })
  const closed = once(socket, 'close')
  const BATCH = 200
  for (let sent = 0; sent < count; sent += BATCH) {
    const n = Math.min(BATCH, count - sent)
    const target = sent + n
    const arrived = new Promise<void>((resolve, reject) => {
      batchDone = () => { if (answered >= target) resolve() }
      closed.then(() => reject(new Error(`connection from ${from} closed after ${answered} answers`)), reject)
    })
    socket.write(request(origin).repeat(n))
    await arrived
  }
  socket.end()
  return statuses
}

type Line = { msg?: string; level?: number; code?: string; client?: string; count?: number; logged?: number; statusCode?: number }

t.test('10,000 invalid bodies from one address and 10,000 unlisted origins from 100: a few hundred lines, every refusal counted, the real error logged', async (t) => {
  const time = fakeClock(Date.now())
  const { app, sim, logs } = await build(t, { LOG_LEVEL: 'info' }, { deps: { clock: time.clock } })
  const port = await listenLocal(app)
  const startLines = logs().split('\n').filter(Boolean).length

  const oneAddress = Promise.all([0, 1, 2, 3].map(() => flood(port, '127.0.0.2', ORIGIN, 2_500)))
  const manyAddresses = Promise.all(Array.from({ length: 100 }, (_, i) => flood(port, `127.0.1.${i + 1}`, 'https://evil.example', 100)))
  // An upstream failure while the flood runs: Connect refuses the call (our configuration is wrong).
  sim.script({ type: 'AccessDeniedException' })
  const real = await fetch(`http://127.0.0.1:${port}/chat/start`, {
    method: 'POST', headers: { 'content-type': 'application/json', origin: ORIGIN }, body: JSON.stringify(validBody())
  })
  t.equal(real.status, 502, 'the real chat start failed upstream')
  const realId = real.headers.get('x-request-id')
  await real.arrayBuffer()

  const one = (await oneAddress).flat()
  const many = (await manyAddresses).flat()
  t.equal(one.length, 10_000)
  t.ok(one.every((s) => s === 'HTTP/1.1 400'), 'every invalid body was answered 400')
  t.equal(many.length, 10_000)
  t.ok(many.every((s) => s === 'HTTP/1.1 403'), 'every unlisted origin was answered 403')

  // The window ends: what was held back is summarised.
  time.tickSync(60_000)
  const lines = logs().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line).slice(startLines)
  t.ok(lines.length < 300, `log lines for 20,001 requests: ${lines.length}`)

  const told = (code: string) => {
    const own = lines.filter((l) => l.msg === 'request completed' && l.code === code).length
    const summaries = lines.filter((l) => l.msg === 'refusals summarised' && l.code === code)
    return { own, summaries, total: own + summaries.reduce((n, s) => n + (s.count ?? 0) - (s.logged ?? 0), 0) }
  }
  const invalid = told('VALIDATION_FAILED')
  t.equal(invalid.own, 5, 'one address: 5 lines of its own')
  t.match(invalid.summaries, [{ client: '127.0.0.2', statusCode: 400, count: 10_000, logged: 5 }], 'then one summary with the count')
  const origin = told('ORIGIN_NOT_ALLOWED')
  t.equal(origin.total, 10_000, 'a hundred addresses: every refusal is in a line or a summary')
  t.ok(origin.own <= 95, `at most the window's 100 lines in all (${origin.own} for the hundred)`)
  t.equal(origin.summaries.length, 100, 'one summary per address')

  const failed = lines.filter((l) => l.msg === 'chat start failed upstream')
  t.equal(failed.length, 1, 'the upstream failure is logged')
  t.equal(failed[0]?.level, 50, 'at error')
  t.ok(lines.some((l) => l.msg === 'request completed' && l.statusCode === 502 && (l as { reqId?: string }).reqId === realId), 'with its request line')

  const metrics = (await app.inject('/metrics')).body
  t.equal(metricSample(metrics, 'ccg_requests_refused_total{code="validation_failed"}'), 10_000, 'every invalid body counted')
  t.equal(metricSample(metrics, 'ccg_requests_refused_total{code="origin_not_allowed"}'), 10_000, 'every unlisted origin counted')
  t.equal(metricSample(metrics, 'ccg_origin_refused_total'), 10_000)
})

/** Sends `head` (request line and headers, no body) from `from` and returns the first answer's status line. */
async function headersOnly (port: number, from: string, head: string): Promise<string> {
  const socket = connect({ port, host: '127.0.0.1', localAddress: from })
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(head)
  const [first] = await once(socket.setEncoding('utf8'), 'data') as [string]
  socket.destroy()
  return first.split('\r\n')[0] ?? ''
}

t.test('refusals decided by the headers are answered without waiting for the body', async (t) => {
  // Were the body awaited, the answer would be a 408 after REQUEST_TIMEOUT_MS.
  const { app } = await build(t, { RATE_LIMIT_MAX: '1', REQUEST_TIMEOUT_MS: '20000' })
  const port = await listenLocal(app)
  const head = (origin: string, { url = '/chat/start', type = 'application/json', length = 500 } = {}) =>
    `POST ${url} HTTP/1.1\r\nHost: gw\r\nContent-Type: ${type}\r\nOrigin: ${origin}\r\nContent-Length: ${length}\r\n\r\n`
  t.equal(await headersOnly(port, '127.0.2.1', head('https://evil.example')), 'HTTP/1.1 403 Forbidden', 'an unlisted Origin')
  t.equal(await headersOnly(port, '127.0.2.2', head(ORIGIN, { url: '/chat/start/no-such-widget' })), 'HTTP/1.1 404 Not Found', 'an unknown widget')
  t.equal(await headersOnly(port, '127.0.2.3', head(ORIGIN, { length: 1_000_000 })), 'HTTP/1.1 413 Payload Too Large', 'a body over the limit by its Content-Length')
  t.equal(await headersOnly(port, '127.0.2.4', head(ORIGIN, { type: 'application/xml' })), 'HTTP/1.1 415 Unsupported Media Type', 'a content type never parsed')
  t.equal(await headersOnly(port, '127.0.2.5', head(ORIGIN, { type: 'application/xml' })), 'HTTP/1.1 415 Unsupported Media Type', 'the limit\'s one request')
  t.equal(await headersOnly(port, '127.0.2.5', head(ORIGIN)), 'HTTP/1.1 429 Too Many Requests', 'the rate limit')
})
