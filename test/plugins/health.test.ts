import { readFileSync } from 'node:fs'
import Fastify from 'fastify'
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import errorHandler from '../../src/plugins/error-handler.js'
import health from '../../src/plugins/health.js'
import { heldRequest } from '../held-request.js'
import { build, ORIGIN, startChat, until, validBody } from '../helper.js'

t.test('GET /health/live and /health/ready -> 200 on a configured app', async (t) => {
  const { app } = await build(t)
  const live = await app.inject('/health/live')
  t.equal(live.statusCode, 200)
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  t.same(live.json(), { status: 'ok', version, commit: 'unknown' }, 'the version; run from src/, no build recorded a commit')
  const ready = await app.inject('/health/ready')
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready' })
})

t.test('overloaded (heap over the threshold) -> readiness 503 in our error shape; liveness and other routes unaffected', async (t) => {
  const app = Fastify()
  await app.register(errorHandler)
  await app.register(health, { maxHeapUsedBytes: 1, sampleIntervalMs: 10 })
  app.get('/work', async () => ({ done: true }))
  t.teardown(() => app.close())

  let ready = await app.inject('/health/ready')
  for (let i = 0; ready.statusCode === 200 && i < 200; i++) {
    await sleep(25)
    ready = await app.inject('/health/ready')
  }
  t.equal(ready.statusCode, 503)
  t.same(ready.json(), { statusCode: 503, error: 'Service Unavailable', code: 'OVERLOADED', message: 'This replica is overloaded' })
  t.equal(ready.headers['retry-after'], '5')
  t.equal((await app.inject('/health/live')).statusCode, 200, 'an overloaded process is alive: no restart')
  t.equal((await app.inject('/work')).statusCode, 200, 'under-pressure does not refuse the other routes')
})

t.test('pressure: false (serverless) -> nothing sampled, readiness never says overloaded', async (t) => {
  // A threshold below any reading: overloaded at once wherever pressure is measured.
  const options = { maxEventLoopDelayMs: -1 }
  for (const [pressure, status] of [[true, 503], [false, 200]] as const) {
    const app = Fastify()
    await app.register(errorHandler)
    await app.register(health, { ...options, pressure })
    t.teardown(() => app.close())
    t.equal((await app.inject('/health/ready')).statusCode, status, `pressure: ${pressure}`)
  }
})

t.test('event-loop delay over the threshold -> readiness 503', async (t) => {
  const app = Fastify()
  await app.register(health, { maxEventLoopDelayMs: 1, sampleIntervalMs: 50 })
  t.teardown(() => app.close())
  let ready = await app.inject('/health/ready')
  for (let i = 0; ready.statusCode === 200 && i < 50; i++) {
    const until = Date.now() + 60
    while (Date.now() < until) { /* keep the event loop busy */ }
    await sleep(60)
    ready = await app.inject('/health/ready')
  }
  t.equal(ready.statusCode, 503)
  t.equal(ready.json().code, 'OVERLOADED')
})

t.test('draining: readiness 503 at once, new connections refused, in-flight start finishes 200', async (t) => {
  const { app, logs, sim } = await build(t, {}, { sim: { latencyMs: 1500 } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const base = `http://127.0.0.1:${port}`

  const inFlight = fetch(`${base}/chat/start`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(validBody()) })
  const probe = await heldRequest(port, 'GET /health/ready HTTP/1.1\r\nHost: gw\r\n')
  const late = await heldRequest(port, 'GET /docs/json HTTP/1.1\r\nHost: gw\r\n')
  const live = await heldRequest(port, 'GET /health/live HTTP/1.1\r\nHost: gw\r\n')
  // The start is in flight once Connect has it; the held requests are read by then too.
  await until('the start to reach Connect', () => sim.requests.length >= 1)

  const closed = app.close()
  while (!logs().includes('draining')) await sleep(10)

  const ready = await probe.finish('\r\n')
  t.equal(ready.status, 503, 'readiness 503 while draining')
  t.match(ready.headers, 'connection: close')
  t.match(ready.headers, 'retry-after: 5')
  t.match(JSON.parse(ready.body), { statusCode: 503, code: 'OVERLOADED', message: 'This replica is shutting down' })

  const refused = await late.finish('\r\n')
  t.equal(refused.status, 503, 'work arriving on a busy connection is refused in our shape')
  t.match(JSON.parse(refused.body), { code: 'OVERLOADED', message: /shutting down/ })
  t.equal((await live.finish('\r\n')).status, 200, 'still alive while draining')

  await t.rejects(fetch(`${base}/health/ready`), 'no new connections')
  const res = await inFlight
  t.equal(res.status, 200, 'the in-flight start finishes')
  const json = await res.json() as { data: { startChatResult: { ParticipantToken: string } } }
  t.ok(json.data.startChatResult.ParticipantToken)
  t.equal(res.headers.get('connection'), 'close', 'its keep-alive connection is not kept')
  // A connection left idle after its answer would hold close() until keepAliveTimeout (72 s).
  const began = Date.now()
  await closed
  t.ok(Date.now() - began < 10_000, 'close() finishes once the in-flight work is done')
})

t.test('a chat start during drain is refused with 503, Retry-After and CORS headers, without reaching Connect', async (t) => {
  const { app, sim, logs } = await build(t, {}, { sim: { latencyMs: 1000 } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const body = JSON.stringify(validBody())
  const start = await heldRequest(port, `POST /chat/start HTTP/1.1\r\nHost: gw\r\nOrigin: ${ORIGIN}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n`)
  const inFlight = startChat(app, validBody())
  while (sim.requests.length < 1) await sleep(10)

  const closed = app.close()
  while (!logs().includes('draining')) await sleep(10)
  const res = await start.finish(`\r\n${body}`)
  t.equal(res.status, 503)
  t.match(res.headers, /retry-after: \d+/)
  t.match(res.headers, `access-control-allow-origin: ${ORIGIN}`, 'the widget can read the 503')
  t.equal(sim.requests.length, 1, 'only the start already in flight reached Connect')
  t.equal((await inFlight).statusCode, 200, 'the start already in flight finishes')
  await closed
})
