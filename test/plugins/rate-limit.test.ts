import t from 'tap'
import { Redis } from 'ioredis'
import { createServer, connect, type Server, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { loadConfig } from '../../src/config.js'
import { fakeClock } from '../fake-clock.js'
import { build, startChat, validBody, type Harness } from '../helper.js'
import { redisKeyPrefix, redisSkip, redisTestUrl } from '../redis.js'

// RATE_LIMIT_MAX per RATE_LIMIT_WINDOW per client IP, shared through Redis.

const from = (h: Harness, ip: string, headers: Record<string, string> = {}) => h.app.inject({
  method: 'POST', url: '/chat/start', remoteAddress: ip,
  headers: { 'content-type': 'application/json', ...headers }, payload: JSON.stringify(validBody())
})
const counter = async (c: { get (): Promise<{ values: Array<{ value: number; labels: Record<string, unknown> }> }> }, use?: string) =>
  (await c.get()).values.filter((v) => use === undefined || v.labels.use === use).reduce((sum, v) => sum + v.value, 0)
/** The rate limit's own outage line (the live-chat count logs its own). */
const rateLimitUnreachable = (logs: string) => logs.split('\n').filter((l) => l.includes('Redis unreachable: the per-client rate limit'))

t.test('in memory: past RATE_LIMIT_MAX -> 429 RATE_LIMITED with Retry-After and x-ratelimit-*; Connect not called; counted', async (t) => {
  const h = await build(t, { RATE_LIMIT_MAX: '3' })
  for (const remaining of ['2', '1', '0']) {
    const res = await startChat(h.app, validBody())
    t.equal(res.statusCode, 200)
    t.equal(res.headers['x-ratelimit-limit'], '3')
    t.equal(res.headers['x-ratelimit-remaining'], remaining)
  }
  const res = await startChat(h.app, validBody())
  t.equal(res.statusCode, 429)
  t.same(res.json(), { statusCode: 429, error: 'Too Many Requests', code: 'RATE_LIMITED', message: 'Too many chat starts from this address; retry in 1 minute' })
  const retryAfter = Number(res.headers['retry-after'])
  t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter} within the 1 minute window`)
  t.equal(res.headers['x-ratelimit-limit'], '3')
  t.equal(res.headers['x-ratelimit-remaining'], '0')
  t.ok(Number(res.headers['x-ratelimit-reset']) >= 1)
  t.equal(h.sim.requests.length, 3, 'the refused start never reached Connect')
  t.equal(await counter(h.app.metrics.rateLimited), 1)
  t.equal((await from(h, '203.0.113.9')).statusCode, 200, 'another client has its own limit')
})

t.test('the limit runs before the body is read: invalid requests use it up too', async (t) => {
  const h = await build(t, { RATE_LIMIT_MAX: '2' })
  t.equal((await startChat(h.app, '{')).statusCode, 400)
  t.equal((await startChat(h.app, {})).statusCode, 400)
  t.equal((await startChat(h.app, validBody())).statusCode, 429)
})

t.test('the window resets after RATE_LIMIT_WINDOW (milliseconds or a duration)', async (t) => {
  for (const window of ['2000', '2 s']) {
    const time = fakeClock()
    const h = await build(t, { RATE_LIMIT_MAX: '1', RATE_LIMIT_WINDOW: window }, { deps: { clock: time.clock } })
    t.equal((await startChat(h.app, validBody())).statusCode, 200)
    t.equal((await startChat(h.app, validBody())).statusCode, 429)
    await time.tick(2_200)
    t.equal((await startChat(h.app, validBody())).statusCode, 200, `allowed again after ${window}`)
  }
})

t.test('RATE_LIMIT_WINDOW: durations parse; a typo stops start-up naming the setting', async (t) => {
  const windowMs = (w: string) => loadConfig({ NODE_ENV: 'development', CONNECT_SIMULATOR: 'true', RATE_LIMIT_WINDOW: w }).rateLimitWindowMs
  t.equal(windowMs('60000'), 60_000)
  t.equal(windowMs('1 minute'), 60_000)
  t.equal(windowMs('30 seconds'), 30_000)
  t.equal(windowMs('2h'), 7_200_000)
  for (const bad of ['1 minuet', 'soon', '0', '-5', '1.5 minutes']) {
    t.throws(() => windowMs(bad), { name: 'ConfigError', message: /RATE_LIMIT_WINDOW/ }, bad)
  }
})

t.test('only the chat start is limited: other routes and CORS preflights never are', async (t) => {
  const h = await build(t, { RATE_LIMIT_MAX: '1' })
  t.equal((await startChat(h.app, validBody())).statusCode, 200)
  t.equal((await startChat(h.app, validBody())).statusCode, 429)
  for (let i = 0; i < 3; i++) {
    const health = await h.app.inject({ method: 'GET', url: '/health/live' })
    t.equal(health.statusCode, 200)
    t.notOk(health.headers['x-ratelimit-limit'])
    const preflight = await h.app.inject({
      method: 'OPTIONS', url: '/chat/start', headers: { origin: 'https://shop.example.com', 'access-control-request-method': 'POST' }
    })
    t.equal(preflight.statusCode, 204)
  }
})

t.test('TRUST_PROXY off: a spoofed X-Forwarded-For does not escape the limit', async (t) => {
  const h = await build(t, { RATE_LIMIT_MAX: '2' })
  const codes = []
  for (const spoof of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) codes.push((await from(h, '127.0.0.1', { 'x-forwarded-for': spoof })).statusCode)
  t.same(codes, [200, 200, 429])
})

t.test('TRUST_PROXY lists the load balancer: its X-Forwarded-For is honoured; entries a client prepends are not', async (t) => {
  const h = await build(t, { RATE_LIMIT_MAX: '2', TRUST_PROXY: '127.0.0.1,10.0.0.0/8' })
  for (const client of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) {
    t.equal((await from(h, '127.0.0.1', { 'x-forwarded-for': client })).statusCode, 200, `${client} has its own limit`)
  }
  // The balancer appends the real peer; anything to its left came from the client and is ignored.
  const codes = []
  for (const fake of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) {
    codes.push((await from(h, '10.1.2.3', { 'x-forwarded-for': `${fake}, 198.51.100.9` })).statusCode)
  }
  t.same(codes, [200, 200, 429])
  // A peer that is not a listed proxy is the client itself, whatever it claims.
  const direct = []
  for (const spoof of ['192.0.2.7', '192.0.2.8', '192.0.2.9']) direct.push((await from(h, '203.0.113.50', { 'x-forwarded-for': spoof })).statusCode)
  t.same(direct, [200, 200, 429])
})

t.test('TRUST_PROXY=true: the X-Forwarded-For client is believed (for balancers that replace the header)', async (t) => {
  const h = await build(t, { RATE_LIMIT_MAX: '1' })
  const trusting = await build(t, { RATE_LIMIT_MAX: '1', TRUST_PROXY: 'true' })
  const codes = async (x: Harness) => {
    const out = []
    for (const client of ['198.51.100.1', '198.51.100.2']) out.push((await from(x, '10.9.9.9', { 'x-forwarded-for': client })).statusCode)
    return out
  }
  t.same(await codes(trusting), [200, 200])
  t.same(await codes(h), [200, 429], 'and not believed by default')
})

/** A TCP relay in front of the real Redis, so a test can make Redis hang, go away and come back. */
async function redisRelay (target: URL) {
  const clients = new Set<Socket>()
  const pairs = new Set<Socket>()
  let hanging = false
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port || 6379), target.hostname)
    clients.add(client)
    pairs.add(client).add(upstream)
    client.on('data', (d) => { if (!hanging) upstream.write(d) })
    upstream.on('data', (d) => { if (!hanging) client.write(d) })
    const end = () => { client.destroy(); upstream.destroy(); clients.delete(client); pairs.delete(client); pairs.delete(upstream) }
    for (const s of [client, upstream]) { s.on('close', end); s.on('error', end) }
  })
  const listen = (port: number) => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  await listen(0)
  const { port } = server.address() as AddressInfo
  const url = new URL(target.href)
  url.hostname = '127.0.0.1'
  url.port = String(port)
  return {
    url: url.href,
    connections: () => clients.size,
    /** Redis stops answering but the connection stays up (a hung or overloaded server). */
    hang () { hanging = true },
    /** Redis goes away: connections dropped, new ones refused. */
    async stop () {
      const closed = new Promise((resolve) => server.close(resolve))
      for (const s of pairs) s.destroy()
      await closed
      hanging = false
    },
    start: () => listen(port),
    close: () => new Promise((resolve) => { for (const s of pairs) s.destroy(); server.close(resolve) })
  }
}

const timed = async <T>(fn: () => Promise<T>) => { const start = Date.now(); const value = await fn(); return { value, ms: Date.now() - start } }
// Generous: proves "bounded", not fast (2 cores, other suites running). Redis timeouts are 250-500 ms.
const BOUND_MS = 3_000

t.test('Redis', { skip: await redisSkip() }, async (t) => {
  t.test('two app instances sharing one Redis hold one limit between them', async (t) => {
    const prefix = redisKeyPrefix(t)
    const env = { RATE_LIMIT_MAX: '3', REDIS_URL: redisTestUrl(), REDIS_KEY_PREFIX: prefix }
    const a = await build(t, env)
    const b = await build(t, env)
    const codes = []
    for (const h of [a, b, a, b, a]) codes.push((await startChat(h.app, validBody())).statusCode)
    t.same(codes, [200, 200, 200, 429, 429])
    t.equal(a.sim.requests.length + b.sim.requests.length, 3)
    const refused = await startChat(b.app, validBody())
    const retryAfter = Number(refused.headers['retry-after'])
    t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter} from the Redis TTL`)
    t.equal(refused.headers['x-ratelimit-remaining'], '0')

    const redis = new Redis(redisTestUrl())
    t.teardown(() => redis.disconnect())
    // a: 200, 200, 429; b: 200, 429 (count 5), then b refuses on its own until the window ends.
    t.equal(await redis.get(`${prefix}rate-limit:127.0.0.1`), '5', 'the counter lives in Redis under REDIS_KEY_PREFIX, up to each replica\'s first refusal')
    t.equal(await counter(a.app.metrics.redisFailOpen) + await counter(b.app.metrics.redisFailOpen), 0)
  })

  t.test('a flood from one address over the limit: one Redis call per replica, then refused without Redis until the window ends', async (t) => {
    const prefix = redisKeyPrefix(t)
    const h = await build(t, { RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW: '1 hour', REDIS_URL: redisTestUrl(), REDIS_KEY_PREFIX: prefix })
    const codes = []
    for (let i = 0; i < 50; i++) codes.push((await startChat(h.app, validBody())).statusCode)
    t.same(codes, [200, 200, ...Array(48).fill(429)])
    const redis = new Redis(redisTestUrl())
    t.teardown(() => redis.disconnect())
    t.equal(await redis.get(`${prefix}rate-limit:127.0.0.1`), '3', 'Redis counted up to the first refusal only')
    const last = await startChat(h.app, validBody())
    const retryAfter = Number(last.headers['retry-after'])
    t.ok(retryAfter > 3590 && retryAfter <= 3600, `Retry-After ${retryAfter}: the end of Redis's window`)
    t.equal(await counter(h.app.metrics.rateLimited), 49, 'every refusal counted')
  })

  t.test('Redis hangs, then stops, mid-test: answered within a bounded time, counted per process meanwhile, logged once; reconnects by itself; closed on shutdown', async (t) => {
    const relay = await redisRelay(new URL(redisTestUrl()))
    t.teardown(relay.close)
    const prefix = redisKeyPrefix(t)
    const h = await build(t, { RATE_LIMIT_MAX: '100', REDIS_URL: relay.url, REDIS_KEY_PREFIX: prefix })
    const direct = new Redis(redisTestUrl())
    t.teardown(() => direct.disconnect())
    const inRedis = async () => Number(await direct.get(`${prefix}rate-limit:127.0.0.1`))

    t.equal((await startChat(h.app, validBody())).headers['x-ratelimit-remaining'], '99')
    t.equal(await inRedis(), 1, 'counted in Redis')

    relay.hang()
    for (let i = 0; i < 3; i++) {
      const { value: res, ms } = await timed(() => startChat(h.app, validBody()))
      t.equal(res.statusCode, 200, 'served while Redis hangs')
      t.ok(ms < BOUND_MS, `answered in ${ms} ms`)
    }
    await relay.stop()
    for (let i = 0; i < 3; i++) {
      const { value: res, ms } = await timed(() => startChat(h.app, validBody()))
      t.equal(res.statusCode, 200, 'served while Redis is down')
      t.ok(ms < BOUND_MS, `answered in ${ms} ms`)
      t.equal(res.headers['x-ratelimit-remaining'], String(96 - i), 'still counted, in this process')
    }
    t.equal(await counter(h.app.metrics.redisFailOpen, 'rate_limit'), 6, 'every decision without Redis counted')
    const unreachable = () => rateLimitUnreachable(h.logs())
    t.equal(unreachable().length, 1, 'logged once per outage')

    await relay.start()
    const giveUp = Date.now() + 15_000
    while (await inRedis() === 1 && Date.now() < giveUp) {
      await startChat(h.app, validBody())
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    t.equal(await inRedis(), 2, 'counting in Redis again without a restart')
    t.match(h.logs(), /Redis reachable again/)

    t.ok(relay.connections() >= 1)
    await h.app.close()
    const closedBy = Date.now() + 5_000
    while (relay.connections() > 0 && Date.now() < closedBy) await new Promise((resolve) => setTimeout(resolve, 20))
    t.equal(relay.connections(), 0, 'the Redis connection is closed on shutdown')
  })

  t.test('Redis at a dead port from the start: answered within a bounded time, limited per process, logged once', async (t) => {
    const dead = createServer()
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve))
    const { port } = dead.address() as AddressInfo
    await new Promise((resolve) => dead.close(resolve))
    const h = await build(t, { RATE_LIMIT_MAX: '2', REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_KEY_PREFIX: redisKeyPrefix(t) })
    const codes = []
    for (let i = 0; i < 4; i++) {
      const { value: res, ms } = await timed(() => startChat(h.app, validBody()))
      codes.push(res.statusCode)
      t.ok(ms < BOUND_MS, `answered in ${ms} ms`)
    }
    t.same(codes, [200, 200, 429, 429])
    t.equal(await counter(h.app.metrics.redisFailOpen, 'rate_limit'), 4)
    t.equal(rateLimitUnreachable(h.logs()).length, 1)
  })
})
