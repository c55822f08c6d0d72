import t from 'tap'
import { build, metricSample, startChat, validBody } from '../helper.js'
import { fakeClock } from '../fake-clock.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

type Line = Record<string, unknown> & { msg?: string; level?: number; reqId?: string }
const lines = (logs: string): Line[] => logs.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line)
const requestLines = (logs: string) => lines(logs).filter((l) => l.msg === 'request completed')

t.test('a well-formed X-Request-Id from the load balancer is kept, returned and logged', async (t) => {
  const { app, logs } = await build(t, { TRUST_PROXY: '127.0.0.1' })
  for (const id of ['lb-7f3a9c', '0b8e5f8c2d9a4e1f9b7c6a5d4e3f2a1b', 'Root=1-67891233-abcdef012345678912345678', '8d3f1c2e-4a5b-4c6d-8e7f-9a0b1c2d3e4f']) {
    const res = await startChat(app, validBody(), { 'x-request-id': id })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['x-request-id'], id, `returned: ${id}`)
    const line = requestLines(logs()).find((l) => l.reqId === id)
    t.ok(line, `logged: ${id}`)
  }
})

t.test('X-Request-Id from a peer that is not a TRUST_PROXY balancer is replaced by a fresh UUID: a client cannot name its request', async (t) => {
  const forged = 'victim-request-0001'
  const direct = await build(t)
  const res = await startChat(direct.app, validBody(), { 'x-request-id': forged })
  t.equal(res.statusCode, 200)
  t.match(res.headers['x-request-id'], UUID, 'without TRUST_PROXY (it was kept)')
  t.notOk(direct.logs().includes(forged), 'and never logged')

  const behind = await build(t, { TRUST_PROXY: '10.0.0.0/8' })
  const inject = (remoteAddress: string) => behind.app.inject({ method: 'GET', url: '/health/live', remoteAddress, headers: { 'x-request-id': forged } })
  t.match((await inject('203.0.113.9')).headers['x-request-id'], UUID, 'from a client that is not a listed balancer')
  t.equal((await inject('10.1.2.3')).headers['x-request-id'], forged, 'from the listed balancer: kept')
  t.equal((await inject('::ffff:10.1.2.3')).headers['x-request-id'], forged, 'as a dual-stack socket reports it too')
})

t.test('X-Amzn-Trace-Id is logged beside the request id when present and well formed', async (t) => {
  const { app, logs } = await build(t)
  const trace = 'Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=1'
  const res = await startChat(app, validBody(), { 'x-amzn-trace-id': trace })
  const line = requestLines(logs()).find((l) => l.reqId === res.headers['x-request-id'])
  t.equal(line?.amznTraceId, trace)
  const bad = await startChat(app, validBody(), { 'x-amzn-trace-id': 'Root=1"}{' })
  t.notOk(requestLines(logs()).find((l) => l.reqId === bad.headers['x-request-id'])?.amznTraceId, 'a malformed one is left out')
})

t.test('a malformed X-Request-Id is replaced by a fresh UUID', async (t) => {
  const { app, logs } = await build(t, { TRUST_PROXY: '127.0.0.1' })
  for (const bad of ['has space', 'x'.repeat(129), '<script>', 'a"b', '', 'ünïcode']) {
    const res = await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': bad } })
    t.match(res.headers['x-request-id'], UUID, `replaced: ${JSON.stringify(bad.slice(0, 20))}`)
  }
  t.notMatch(logs(), '<script>')
})

t.test('without X-Request-Id every request gets its own UUID, in the answer and in its log lines', async (t) => {
  const { app, logs } = await build(t)
  const a = await startChat(app, validBody())
  const b = await startChat(app, validBody())
  t.match(a.headers['x-request-id'], UUID)
  t.match(b.headers['x-request-id'], UUID)
  t.not(a.headers['x-request-id'], b.headers['x-request-id'])
  const ofA = lines(logs()).filter((l) => l.reqId === a.headers['x-request-id'])
  t.same(ofA.map((l) => l.msg), ['request completed'], 'one line per request, with its id')
  t.match(ofA[0], { statusCode: 200, contactId: a.json().data.startChatResult.ContactId, persistent: false }, 'a started chat\'s contact id is on it')
})

t.test('error answers carry the request id too', async (t) => {
  const { app, sim } = await build(t, { TRUST_PROXY: '127.0.0.1' })
  const notFound = await app.inject({ method: 'GET', url: '/nope', headers: { 'x-request-id': 'req-404' } })
  t.equal(notFound.statusCode, 404)
  t.equal(notFound.headers['x-request-id'], 'req-404')
  const invalid = await startChat(app, { Bogus: 1 }, { 'x-request-id': 'req-400' })
  t.equal(invalid.statusCode, 400)
  t.equal(invalid.headers['x-request-id'], 'req-400')
  sim.script({ type: 'AccessDeniedException' })
  const upstream = await startChat(app, validBody(), { 'x-request-id': 'req-502' })
  t.equal(upstream.statusCode, 502)
  t.equal(upstream.headers['x-request-id'], 'req-502')
})

t.test('one line per request: method, route, status, time, address, id and the chat started; no headers, body or query', async (t) => {
  const { app, logs } = await build(t, { TRUST_PROXY: '127.0.0.1' })
  const res = await app.inject({
    method: 'POST',
    url: '/chat/start?name=Query-Secret',
    headers: {
      'content-type': 'application/json',
      'x-request-id': 'one-line',
      cookie: 'session=Cookie-Secret',
      authorization: 'Bearer Auth-Secret',
      'user-agent': 'Agent-Secret'
    },
    payload: JSON.stringify(validBody())
  })
  t.equal(res.statusCode, 200)
  const mine = requestLines(logs()).filter((l) => l.reqId === 'one-line')
  t.equal(mine.length, 1)
  const line = mine[0]!
  t.same(Object.keys(line).filter((k) => !['level', 'time', 'pid', 'hostname'].includes(k)).sort(),
    ['contactId', 'method', 'msg', 'persistent', 'remoteAddress', 'reqId', 'responseTime', 'route', 'statusCode'])
  t.match(line, { level: 30, method: 'POST', route: '/chat/start', statusCode: 200, remoteAddress: '127.0.0.1' })
  t.type(line.responseTime, 'number')
  t.notMatch(logs(), /Query-Secret|Cookie-Secret|Auth-Secret|Agent-Secret/)
})

t.test('an unmatched request logs the path it tried, without the query string', async (t) => {
  const { app, logs } = await build(t, { TRUST_PROXY: '127.0.0.1' })
  await app.inject({ method: 'GET', url: '/wp-admin/setup.php?token=Query-Secret', headers: { 'x-request-id': 'unmatched' } })
  const line = requestLines(logs()).find((l) => l.reqId === 'unmatched')
  t.match(line, { route: '(no route)', path: '/wp-admin/setup.php', statusCode: 404 })
  t.notMatch(logs(), 'Query-Secret')
})

t.test('probes and scrapes are logged at debug, not info', async (t) => {
  const quiet = await build(t, { LOG_LEVEL: 'info' })
  for (const url of ['/health/live', '/health/ready', '/metrics']) {
    t.equal((await quiet.app.inject(url)).statusCode, 200, url)
  }
  t.same(requestLines(quiet.logs()), [], 'nothing at info')

  const verbose = await build(t, { LOG_LEVEL: 'debug' })
  await verbose.app.inject('/health/ready')
  t.match(requestLines(verbose.logs()), [{ level: 20, route: '/health/ready', statusCode: 200 }])
})

t.test('refusals: 5 lines per client and kind a minute, then one summary with the count; the next minute logs again', async (t) => {
  const time = fakeClock()
  const { app, logs } = await build(t, {}, { deps: { clock: time.clock } })
  const refuse = (remoteAddress: string, url = '/chat/start') => app.inject({
    method: 'POST', url, remoteAddress, headers: { 'content-type': 'application/json' }, payload: '{"Bogus":1}'
  })
  for (let i = 0; i < 12; i++) t.equal((await refuse('192.0.2.7')).statusCode, 400)
  for (let i = 0; i < 7; i++) t.equal((await refuse('192.0.2.7', '/nowhere')).statusCode, 404)
  for (let i = 0; i < 3; i++) await refuse('192.0.2.8')
  const refused = requestLines(logs())
  t.equal(refused.filter((l) => l.code === 'VALIDATION_FAILED' && l.remoteAddress === '192.0.2.7').length, 5, 'the first 5 invalid bodies from one client')
  t.equal(refused.filter((l) => l.code === 'NOT_FOUND').length, 5, 'another kind from the same client has its own 5')
  t.equal(refused.filter((l) => l.remoteAddress === '192.0.2.8').length, 3, 'another client has its own 5')
  t.same(lines(logs()).filter((l) => l.msg === 'refusals summarised'), [], 'no summary before the minute ends')

  time.tickSync(60_000)
  const summaries = lines(logs()).filter((l) => l.msg === 'refusals summarised')
  t.match(summaries, [
    { level: 30, client: '192.0.2.7', code: 'VALIDATION_FAILED', statusCode: 400, count: 12, logged: 5, windowSeconds: 60 },
    { level: 30, client: '192.0.2.7', code: 'NOT_FOUND', statusCode: 404, count: 7, logged: 5, windowSeconds: 60 }
  ])
  t.equal(summaries.length, 2, 'the client within its budget is not summarised')

  await refuse('192.0.2.7')
  t.equal(requestLines(logs()).filter((l) => l.code === 'VALIDATION_FAILED' && l.remoteAddress === '192.0.2.7').length, 6, 'a new minute, a new budget')
  const metrics = (await app.inject('/metrics')).body
  t.equal(metricSample(metrics, 'ccg_requests_refused_total{code="validation_failed"}'), 16, 'the metric counts every refusal')
  t.equal(metricSample(metrics, 'ccg_requests_refused_total{code="not_found"}'), 7)
})

t.test('our own errors and upstream failures are never sampled', async (t) => {
  const { app, sim, logs } = await build(t)
  sim.script(...Array(8).fill({ type: 'AccessDeniedException' }))
  for (let i = 0; i < 8; i++) t.equal((await startChat(app, validBody())).statusCode, 502)
  // Connect refusing to resume a chat is a 409 caused upstream: logged every time too.
  sim.script(...Array(7).fill({ type: 'InvalidRequestException' }))
  for (let i = 0; i < 7; i++) {
    await startChat(app, validBody({ PersistentChat: { RehydrationType: 'ENTIRE_PAST_SESSION', SourceContactId: 'c-1' } }))
  }
  const answered = requestLines(logs())
  t.equal(answered.filter((l) => l.statusCode === 502).length, 8, 'every 502 has its line')
  t.equal(lines(logs()).filter((l) => l.msg === 'chat start failed upstream').length, 8 + answered.filter((l) => l.statusCode === 409).length)
  t.notOk(answered.some((l) => l.code !== undefined && l.statusCode === 502), 'no refusal code on a failure')
})

t.test('requests refused before routing (an undecodable URL) are sampled and counted like every refusal', async (t) => {
  const time = fakeClock()
  const { app, logs } = await build(t, {}, { deps: { clock: time.clock } })
  for (let i = 0; i < 8; i++) t.equal((await app.inject({ method: 'GET', url: '/chat/%E0%A4%A', remoteAddress: '192.0.2.9' })).statusCode, 400)
  t.match(lines(logs()).filter((l) => l.code === 'BAD_URL'), Array(5).fill({ msg: 'request refused before routing', remoteAddress: '192.0.2.9' }))
  t.equal(metricSample((await app.inject('/metrics')).body, 'ccg_requests_refused_total{code="bad_url"}'), 8)
  time.tickSync(60_000)
  t.match(lines(logs()).filter((l) => l.msg === 'refusals summarised'), [{ client: '192.0.2.9', code: 'BAD_URL', count: 8, logged: 5 }])
})
