import { connect } from 'node:net'
import t from 'tap'
import { METRICS_MAX_CONNECTIONS, startMetricsServer } from '../../src/plugins/metrics.js'
import { build, metricSample, ORIGIN, startChat, until, validBody } from '../helper.js'

t.test('GET /metrics is Prometheus text that reflects the traffic', async (t) => {
  const { app, sim } = await build(t, { RATE_LIMIT_MAX: '100' })
  t.equal((await startChat(app, validBody())).statusCode, 200)
  t.equal((await startChat(app, validBody())).statusCode, 200)
  sim.script({ type: 'ThrottlingException' })
  t.equal((await startChat(app, validBody())).statusCode, 200, 'throttled once, then started on the retry')
  sim.script({ type: 'ResourceNotFoundException' })
  t.equal((await startChat(app, validBody())).statusCode, 502)
  t.equal((await startChat(app, validBody(), { origin: 'https://evil.example' })).statusCode, 403)
  t.equal((await startChat(app, validBody(), { origin: ORIGIN })).statusCode, 200)

  const res = await app.inject('/metrics')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  const text = res.body
  t.equal(metricSample(text, 'ccg_chat_starts_total{outcome="started"}'), 4)
  t.equal(metricSample(text, 'ccg_chat_starts_total{outcome="upstream_misconfigured"}'), 1)
  t.equal(metricSample(text, 'ccg_upstream_errors_total{type="ResourceNotFoundException"}'), 1)
  t.equal(metricSample(text, 'ccg_upstream_attempts_total'), 6, 'five starts reached Connect, one of them twice')
  t.equal(metricSample(text, 'ccg_upstream_retries_total{error="ThrottlingException"}'), 1)
  t.equal(metricSample(text, 'ccg_origin_refused_total'), 1)
  t.equal(metricSample(text, 'ccg_rate_limited_total'), 0)
  t.equal(metricSample(text, 'ccg_chat_start_duration_seconds_count{outcome="started"}'), 4)
  t.equal(metricSample(text, 'ccg_http_request_duration_seconds_count{method="POST",route="/chat/start",status_code="200"}'), 4)
  t.equal(metricSample(text, 'ccg_http_request_duration_seconds_count{method="POST",route="/chat/start",status_code="502"}'), 1)
  t.equal(metricSample(text, 'ccg_upstream_in_flight'), 0)
  for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
    t.match(text, new RegExp(`^${name} `, 'm'), `default process metric ${name}`)
  }
})

t.test('requests refused by the per-client rate limit are counted', async (t) => {
  const { app } = await build(t, { RATE_LIMIT_MAX: '1' })
  t.equal((await startChat(app, validBody())).statusCode, 200)
  t.equal((await startChat(app, validBody())).statusCode, 429)
  t.equal(metricSample((await app.inject('/metrics')).body, 'ccg_rate_limited_total'), 1)
})

t.test('unmatched URLs share one series, so clients cannot grow the label set', async (t) => {
  const { app } = await build(t)
  for (const url of ['/a', '/b', '/c?x=1']) await app.inject(url)
  const text = (await app.inject('/metrics')).body
  t.equal(metricSample(text, 'ccg_http_request_duration_seconds_count{method="GET",route="(no route)",status_code="404"}'), 3)
  t.notMatch(text, /route="\/a"/)
})

t.test('/metrics and the probes are never rate limited', async (t) => {
  const { app } = await build(t, { RATE_LIMIT_MAX: '1' })
  for (let i = 0; i < 5; i++) {
    for (const url of ['/metrics', '/health/live', '/health/ready']) t.equal((await app.inject(url)).statusCode, 200, `${url} #${i + 1}`)
  }
})

t.test('with METRICS_PORT the public port does not serve /metrics; the metrics port serves only that', async (t) => {
  const { app } = await build(t, { METRICS_PORT: '0' })
  t.equal((await app.inject('/metrics')).statusCode, 404)
  await startChat(app, validBody())

  const server = await startMetricsServer(app.metrics.registry, { port: 0, host: '127.0.0.1' })
  t.teardown(() => server.close())
  const base = `http://127.0.0.1:${server.port}`
  const res = await fetch(`${base}/metrics`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/plain/)
  t.equal(metricSample(await res.text(), 'ccg_chat_starts_total{outcome="started"}'), 1, 'the app\'s own registry')
  t.equal((await fetch(`${base}/chat/start`, { method: 'POST' })).status, 404)
  t.equal((await fetch(`${base}/health/ready`)).status, 404)
  t.equal((await fetch(`${base}/docs/json`)).status, 404, 'no document unless asked for')
})

t.test('the metrics port serves the OpenAPI document when given one (production)', async (t) => {
  const { app } = await build(t, { METRICS_PORT: '0' })
  await app.ready()
  const server = await startMetricsServer(app.metrics.registry, { port: 0, host: '127.0.0.1', openapi: () => app.swagger() })
  t.teardown(() => server.close())
  const res = await fetch(`http://127.0.0.1:${server.port}/docs/json`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^application\/json/)
  t.ok(((await res.json()) as { paths: Record<string, { post?: unknown }> }).paths['/chat/start']?.post)
})

t.test('the metrics server closes even with a scraper holding a keep-alive connection', async (t) => {
  const { app } = await build(t)
  const server = await startMetricsServer(app.metrics.registry, { port: 0, host: '127.0.0.1' })
  const res = await fetch(`http://127.0.0.1:${server.port}/metrics`, { headers: { connection: 'keep-alive' } })
  await res.text()
  await server.close()
  await t.rejects(fetch(`http://127.0.0.1:${server.port}/metrics`), 'no longer listening')
})

t.test('a port already in use is reported, not ignored', async (t) => {
  const { app } = await build(t)
  const first = await startMetricsServer(app.metrics.registry, { port: 0, host: '127.0.0.1' })
  t.teardown(() => first.close())
  await t.rejects(startMetricsServer(app.metrics.registry, { port: first.port, host: '127.0.0.1' }), { code: 'EADDRINUSE' })
})

/** A raw socket to the admin port that sends `head` and waits; resolves how it ended. */
function rawSocket (port: number, head: string) {
  const socket = connect({ port, host: '127.0.0.1' })
  socket.on('error', () => {})
  let answer = ''
  socket.setEncoding('utf8').on('data', (d: string) => { answer += d })
  socket.once('connect', () => socket.write(head))
  // Not events.once: it rejects on the 'error' (a reset) that may come before 'close'.
  const closed = new Promise<string>((resolve) => socket.once('close', () => resolve(answer)))
  return { socket, closed }
}

t.test('the admin port has the public port\'s timeouts: a request whose headers never finish is closed', async (t) => {
  const { app } = await build(t)
  const server = await startMetricsServer(app.metrics.registry, { port: 0, host: '127.0.0.1', requestTimeoutMs: 1_000 })
  t.teardown(() => server.close())
  const slow = rawSocket(server.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ')
  const silent = rawSocket(server.port, '')
  t.teardown(() => { slow.socket.destroy(); silent.socket.destroy() })
  t.match(await slow.closed, /^(HTTP\/1\.1 408|)/, 'closed by the server (it stayed open forever)')
  // Closed either way; Node may say 408 first when its timer sees the socket before the connection check.
  t.match(await silent.closed, /^(HTTP\/1\.1 408|)/, 'a connection that sends nothing is closed too')
})

t.test('the admin port holds at most METRICS_MAX_CONNECTIONS connections: a flood of idle sockets is closed on arrival', async (t) => {
  const { app } = await build(t)
  const server = await startMetricsServer(app.metrics.registry, { port: 0, host: '127.0.0.1', requestTimeoutMs: 10_000 })
  t.teardown(() => server.close())
  const flood = Array.from({ length: METRICS_MAX_CONNECTIONS + 30 }, () => rawSocket(server.port, 'GET /metrics HTTP/1.1\r\n'))
  t.teardown(() => { for (const s of flood) s.socket.destroy() })
  let closed = 0
  for (const s of flood) void s.closed.then(() => { closed++ })
  await until('the connections past the cap to be closed', () => closed >= 30, 10_000)
  t.equal(closed, 30, `${METRICS_MAX_CONNECTIONS} held, the rest closed (1,000 were held before)`)
})

t.test('the admin port answers the probes when given them, from a listener the public budget cannot fill', async (t) => {
  const { app } = await build(t)
  const health = async (url: string) => { const res = await app.inject(url); return { statusCode: res.statusCode, body: res.body } }
  const server = await startMetricsServer(app.metrics.registry, { port: 0, host: '127.0.0.1', health })
  t.teardown(() => server.close())
  const live = await fetch(`http://127.0.0.1:${server.port}/health/live`)
  t.equal(live.status, 200)
  t.match(await live.json(), { status: 'ok', version: String })
  t.same(await (await fetch(`http://127.0.0.1:${server.port}/health/ready`)).json(), { status: 'ready' })
})
