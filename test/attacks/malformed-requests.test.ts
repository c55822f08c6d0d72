import { connect } from 'node:net'
import { once } from 'node:events'
import t from 'tap'
import { build as buildApp, listenLocal as listen, metricSample, startChat, validBody } from '../helper.js'
import { fakeClock } from '../fake-clock.js'

const build: typeof buildApp = (t, env = {}, options) => buildApp(t, { RESUME_TOKEN_SECRET: 'm'.repeat(40), ...env }, options)

// Malformed HTTP is refused quietly: a 400 (or nothing once the socket is gone), no error-level
// line and no stack in the log, and it still counts toward the client's rate limit.

/** Writes raw bytes from `from` and returns whatever came back before the server closed. */
async function raw (port: number, from: string, bytes: string): Promise<string> {
  const socket = connect({ port, host: '127.0.0.1', localAddress: from })
  socket.on('error', () => {})
  await once(socket, 'connect')
  let text = ''
  socket.setEncoding('utf8').on('data', (c: string) => { text += c })
  socket.write(bytes)
  await once(socket, 'close')
  return text
}

const badChunk = 'POST /chat/start HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n'

const levels = (logs: string) => logs.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string; err?: { stack?: string } })

t.test('a bad chunk: 400, logged at most at info without a stack, and counted toward the rate limit', async (t) => {
  const h = await build(t, { RATE_LIMIT_MAX: '3' })
  const port = await listen(h.app)
  for (let i = 0; i < 3; i++) {
    const answer = await raw(port, '127.0.0.2', badChunk)
    t.ok(answer === '' || answer.startsWith('HTTP/1.1 400'), `bad chunk ${i + 1}: 400 or nothing (${answer.split('\r\n')[0]})`)
  }
  const lines = levels(h.logs())
  t.same(lines.filter((l) => l.level > 30).map((l) => l.msg), [], 'nothing above info')
  t.notOk(lines.some((l) => l.err?.stack !== undefined), 'no stack')
  const res = await h.app.inject({ method: 'POST', url: '/chat/start', remoteAddress: '127.0.0.2', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(validBody()) })
  t.equal(res.statusCode, 429, 'the three malformed requests used up that address\'s budget')
  t.equal((await startChat(h.app, validBody())).statusCode, 200, 'another address is unaffected')
})

t.test('framing errors before a request exists: our JSON 400, quietly', async (t) => {
  const h = await build(t)
  const port = await listen(h.app)
  const garbage = await raw(port, '127.0.0.2', 'POST /chat/start HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello')
  t.match(garbage, /^HTTP\/1\.1 400 /)
  const answerBody = garbage.split('\r\n\r\n')[1] ?? ''
  t.match(JSON.parse(answerBody), { statusCode: 400, code: 'MALFORMED_REQUEST' })
  t.match(garbage, /cache-control: no-store/i, 'with the headers every answer carries')
  t.same(levels(h.logs()).filter((l) => l.level > 30).map((l) => l.msg), [], 'nothing above info')
})

t.test('an upload aborted halfway: nothing above info in the log', async (t) => {
  const h = await build(t)
  const port = await listen(h.app)
  const socket = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' })
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write('POST /chat/start HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"Partici')
  // Wait until the request is being read (its line is written when it ends), then walk away.
  await new Promise((resolve) => setTimeout(resolve, 100))
  socket.destroy()
  for (let i = 0; i < 100 && !h.logs().includes('request completed'); i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.same(levels(h.logs()).filter((l) => l.level > 30).map((l) => l.msg), [], 'nothing above info')
})

t.test('a flood of garbage from one address: 5 lines, then one summary; every one counted', async (t) => {
  const time = fakeClock()
  const h = await build(t, {}, { deps: { clock: time.clock } })
  const port = await listen(h.app)
  for (let i = 0; i < 12; i++) t.match(await raw(port, '127.0.0.3', 'GARBAGE / HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 400/)
  const refused = levels(h.logs()).filter((l) => l.msg === 'malformed request refused')
  t.equal(refused.length, 5)
  t.match(refused[0], { code: 'MALFORMED_REQUEST', remoteAddress: '127.0.0.3' })
  time.tickSync(60_000)
  t.match(levels(h.logs()).filter((l) => l.msg === 'refusals summarised'), [{ client: '127.0.0.3', code: 'MALFORMED_REQUEST', statusCode: 400, count: 12, logged: 5 }])
  t.equal(metricSample((await h.app.inject('/metrics')).body, 'ccg_requests_refused_total{code="malformed_request"}'), 12)
})
