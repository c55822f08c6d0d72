import t from 'tap'
import { build, startChat, validBody } from '../helper.js'

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
