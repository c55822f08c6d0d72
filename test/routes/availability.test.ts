/**
 * GET /chat/availability through the real app, the SDK and the simulator, with two replicas sharing
 * one Redis: open, closed (across a day boundary and with overrides), no agents, Connect failing,
 * and the calls to Connect staying those of one poller however many requests and replicas there are.
 * Time is the poller's injected clock; each poll is one tick() driven by the test.
 */
import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import type { App } from '../../src/app.js'
import { SCHEDULE_REFRESH_MS } from '../../src/connect/availability.js'
import { startSimulator, type ConnectSimulator } from '@connect-chat-gateway/simulator'
import { build, freePort, metricSample, ORIGIN, startChat, validBody } from '../helper.js'
import { redisKeyPrefix, redisTestUrl } from '../redis.js'

// Thursday 10 December 2026, 20:00 in Berlin (UTC+1).
const THURSDAY_EVENING = Date.parse('2026-12-10T19:00:00Z')

interface Deployment {
  sim: ConnectSimulator
  replicas: App[]
  /** Each replica's log, in the order of `replicas`. */
  logs: Array<() => string>
  clock: { now: number }
  /** One poll by whichever replica holds the lock, then every other replica reads what it wrote. */
  refresh (): Promise<void>
  /** A replica more, sharing the Redis, the simulator and the clock. */
  addReplica (): Promise<App>
}

async function deployment (t: Test, env: Record<string, string> = {}, replicas = 2): Promise<Deployment> {
  const sim = await startSimulator({ participant: false })
  t.teardown(() => sim.close())
  const clock = { now: THURSDAY_EVENING }
  const shared = {
    CONNECT_QUEUE_ID: 'simulated-queue',
    REDIS_URL: redisTestUrl(),
    REDIS_KEY_PREFIX: redisKeyPrefix(t),
    // Only the test's own ticks poll.
    AVAILABILITY_REFRESH: '1 hour',
    ...env
  }
  const apps: App[] = []
  const logs: Array<() => string> = []
  const addReplica = async () => {
    const { app, logs: log } = await build(t, shared, { simulator: sim, deps: { availabilityNow: () => clock.now } })
    await app.availability!.tick()
    apps.push(app)
    logs.push(log)
    return app
  }
  for (let i = 0; i < replicas; i++) await addReplica()
  const refresh = async () => {
    const holder = apps.find((a) => a.availability!.polling) ?? apps[0]!
    await holder.availability!.tick()
    for (const app of apps) if (app !== holder) await app.availability!.tick()
  }
  await refresh()
  return { sim, replicas: apps, logs, clock, refresh, addReplica }
}

const ask = (app: App, url = '/chat/availability', origin = ORIGIN) => app.inject({ method: 'GET', url, headers: origin ? { origin } : {} })

async function everyReplicaSays (t: Test, d: Deployment, expected: Record<string, unknown>, url?: string) {
  for (const [i, app] of d.replicas.entries()) {
    const res = await ask(app, url)
    t.equal(res.statusCode, 200, `replica ${i}: 200`)
    t.same(res.json(), expected, `replica ${i}: ${JSON.stringify(expected)}`)
  }
}

t.test('open with an agent: every replica answers from the shared poll, cacheable, with CORS for allowed origins only', async (t) => {
  const d = await deployment(t)
  t.equal(d.replicas.filter((a) => a.availability!.polling).length, 1, 'exactly one replica polls Connect')
  await everyReplicaSays(t, d, { open: true, reason: 'open', agentsAvailable: 1, contactsInQueue: 0 })

  const res = await ask(d.replicas[1]!)
  t.equal(res.headers['cache-control'], 'public, max-age=3600')
  t.equal(res.headers['access-control-allow-origin'], ORIGIN)
  const refused = await ask(d.replicas[1]!, '/chat/availability', 'https://evil.example')
  t.equal(refused.statusCode, 403)
  t.equal(refused.json().code, 'ORIGIN_NOT_ALLOWED')
  t.equal((await ask(d.replicas[0]!, '/chat/availability', '')).statusCode, 200, 'no Origin (a mobile app): answered')
})

t.test('closed in the evening: the next opening is the next morning, in the hours\' own time zone', async (t) => {
  const d = await deployment(t)
  d.sim.availability.setQueue('simulated-queue', { timeZone: 'Europe/Berlin', hours: '09:00-17:00 weekdays' })
  d.clock.now += SCHEDULE_REFRESH_MS
  await d.refresh()
  await everyReplicaSays(t, d, { open: false, reason: 'closed', agentsAvailable: 1, contactsInQueue: 0, nextOpen: '2026-12-11T09:00:00+01:00' })

  // 08:59:59 on Friday is still closed, 09:00 open: worked out when asked, not when polled.
  d.clock.now = Date.parse('2026-12-11T07:59:59Z')
  await d.refresh()
  t.equal((await ask(d.replicas[1]!)).json().reason, 'closed')
  d.clock.now = Date.parse('2026-12-11T08:00:00Z')
  t.same((await ask(d.replicas[1]!)).json(), { open: true, reason: 'open', agentsAvailable: 1, contactsInQueue: 0 })

  // Friday 17:00 closes for the weekend: next Monday.
  d.clock.now = Date.parse('2026-12-11T16:00:00Z')
  await d.refresh()
  t.equal((await ask(d.replicas[0]!)).json().nextOpen, '2026-12-14T09:00:00+01:00')
})

t.test('overrides: a closed Friday moves the next opening to Monday, an open Saturday brings it forward', async (t) => {
  const d = await deployment(t)
  d.sim.availability.setQueue('simulated-queue', {
    timeZone: 'Europe/Berlin',
    hours: '09:00-17:00 weekdays',
    overrides: [{ date: '2026-12-11', status: 'CLOSED', name: 'company day' }]
  })
  d.clock.now += SCHEDULE_REFRESH_MS
  await d.refresh()
  await everyReplicaSays(t, d, { open: false, reason: 'closed', agentsAvailable: 1, contactsInQueue: 0, nextOpen: '2026-12-14T09:00:00+01:00' })

  d.sim.availability.setQueue('simulated-queue', {
    overrides: [{ date: '2026-12-11', status: 'CLOSED' }, { date: '2026-12-12', status: 'OPEN', start: '10:00', end: '14:00' }]
  })
  await d.refresh()
  t.equal((await ask(d.replicas[1]!)).json().nextOpen, '2026-12-14T09:00:00+01:00', 'hours are read again only every few minutes')
  d.clock.now += SCHEDULE_REFRESH_MS
  await d.refresh()
  t.equal((await ask(d.replicas[1]!)).json().nextOpen, '2026-12-12T10:00:00+01:00')
})

t.test('no agent staffed: no_agents; agents all busy: open, with nobody available and chats waiting', async (t) => {
  const d = await deployment(t)
  d.sim.availability.setQueue('simulated-queue', { agentsAvailable: 0, agentsStaffed: 0 })
  await d.refresh()
  await everyReplicaSays(t, d, { open: false, reason: 'no_agents', agentsAvailable: 0, contactsInQueue: 0 })

  d.sim.availability.setQueue('simulated-queue', { agentsStaffed: 2, contactsInQueue: 3 })
  await d.refresh()
  await everyReplicaSays(t, d, { open: true, reason: 'open', agentsAvailable: 0, contactsInQueue: 3 })
})

t.test('Connect failing: unknown on every replica, with the last known values and their age; metrics count it', async (t) => {
  const d = await deployment(t)
  d.sim.availability.setFault({ type: 'InternalServiceException' })
  d.clock.now += 30_000
  await d.refresh()
  await everyReplicaSays(t, d, { open: true, reason: 'unknown', agentsAvailable: 1, contactsInQueue: 0, ageSeconds: 30 })

  d.sim.availability.setFault({ type: 'reset' })
  d.clock.now += 15_000
  await d.refresh()
  t.equal((await ask(d.replicas[0]!)).json().ageSeconds, 45, 'connection reset: still the values of 45 s ago')

  const holder = d.replicas.find((a) => a.availability!.polling)!
  const metrics = (await holder.inject({ method: 'GET', url: '/metrics' })).body
  t.equal(metricSample(metrics, 'ccg_availability_polls_total{result="failed"}'), 2)
  t.ok(metricSample(metrics, 'ccg_availability_errors_total{operation="GetCurrentMetricData",error="InternalServiceException"}')! >= 1)

  d.sim.availability.setFault(null)
  await d.refresh()
  await everyReplicaSays(t, d, { open: true, reason: 'open', agentsAvailable: 1, contactsInQueue: 0 })

  const log = d.logs[d.replicas.indexOf(holder)]!()
  t.equal(log.split('availability: Connect did not answer').length - 1, 1, 'one warning for the outage, not one per poll')
  t.match(log, /"operation":"GetCurrentMetricData","errorName":"InternalServiceException"[^\n]*availability: Connect did not answer/)
  t.equal(log.split('availability: Connect answers again').length - 1, 1)
  t.notMatch(log, /"route":"\/chat\/availability"[^\n]*"level":30|"level":30[^\n]*"route":"\/chat\/availability"/, 'answered availability requests are not logged at info')
})

t.test('Redis unreachable: each replica polls on its own, and says so in the metrics', async (t) => {
  const { app, sim } = await build(t, { CONNECT_QUEUE_ID: 'simulated-queue', AVAILABILITY_REFRESH: '1 hour', REDIS_URL: `redis://127.0.0.1:${await freePort()}` },
    { deps: { availabilityNow: () => THURSDAY_EVENING } })
  await app.availability!.tick()
  t.equal(app.availability!.polling, true)
  t.ok(sim.availability.calls().currentMetrics >= 1)
  t.same((await ask(app)).json(), { open: true, reason: 'open', agentsAvailable: 1, contactsInQueue: 0 })
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.ok(metricSample(metrics, 'ccg_redis_fail_open_total{use="availability"}')! >= 1)
})

t.test('the calls to Connect per poll stay the same as requests and replicas grow', async (t) => {
  const d = await deployment(t)
  const perPoll = async () => {
    const before = d.sim.availability.calls()
    await d.refresh()
    const after = d.sim.availability.calls()
    return { describeQueue: after.describeQueue - before.describeQueue, effectiveHours: after.effectiveHours - before.effectiveHours, currentMetrics: after.currentMetrics - before.currentMetrics }
  }
  const twoReplicas = await perPoll()
  t.same(twoReplicas, { describeQueue: 0, effectiveHours: 0, currentMetrics: 1 }, 'one metrics call per poll; the hours were read at the first')

  const before = d.sim.availability.calls()
  for (let i = 0; i < 200; i++) t.equal((await ask(d.replicas[i % 2]!)).statusCode, 200)
  t.same(d.sim.availability.calls(), before, '200 requests: no call to Connect')

  await d.addReplica()
  await d.addReplica()
  t.same(await perPoll(), twoReplicas, 'four replicas: the same calls per poll')
  d.clock.now += SCHEDULE_REFRESH_MS
  t.same(await perPoll(), { describeQueue: 1, effectiveHours: 1, currentMetrics: 1 }, 'the hours again after five minutes')
  t.equal(d.replicas.filter((a) => a.availability!.polling).length, 1)
})

t.test('the lock passes on when its holder shuts down', async (t) => {
  const d = await deployment(t)
  const holder = d.replicas.find((a) => a.availability!.polling)!
  const other = d.replicas.find((a) => a !== holder)!
  await holder.close()
  d.sim.availability.setQueue('simulated-queue', { contactsInQueue: 5 })
  await other.availability!.tick()
  t.equal(other.availability!.polling, true)
  t.equal((await ask(other)).json().contactsInQueue, 5)
})

t.test('REFUSE_WHEN_CLOSED: a closed queue gets 503 CHAT_CLOSED with the next opening, and Connect starts no chat', async (t) => {
  const d = await deployment(t, { REFUSE_WHEN_CLOSED: 'true' })
  t.equal((await startChat(d.replicas[0]!, validBody())).statusCode, 200, 'open: the chat starts')
  d.sim.availability.setQueue('simulated-queue', { timeZone: 'Europe/Berlin', hours: '09:00-17:00 weekdays' })
  d.clock.now += SCHEDULE_REFRESH_MS
  await d.refresh()
  const started = d.sim.requests.length
  for (const app of d.replicas) {
    const res = await startChat(app, validBody(), { origin: ORIGIN })
    t.equal(res.statusCode, 503)
    t.same(res.json(), {
      statusCode: 503, error: 'Service Unavailable', code: 'CHAT_CLOSED',
      message: 'Chat is closed right now; it opens again at 2026-12-11T09:00:00+01:00', nextOpen: '2026-12-11T09:00:00+01:00'
    })
    // 20:05 to 09:00 the next morning.
    t.equal(res.headers['retry-after'], String(12 * 3600 + 55 * 60))
    t.equal(res.headers['access-control-allow-origin'], ORIGIN)
  }
  t.equal(d.sim.requests.length, started, 'StartChatContact was not called')

  // Unknown (Connect not answering) does not refuse: the poller must not close the chat on its own.
  d.sim.availability.setFault({ type: 'InternalServiceException' })
  d.clock.now = Date.parse('2026-12-11T09:00:00Z')
  await d.refresh()
  t.equal((await ask(d.replicas[0]!)).json().reason, 'unknown')
  t.equal((await startChat(d.replicas[0]!, validBody())).statusCode, 200)
})

t.test('widget profiles: each its own queue and refuseWhenClosed; a profile without a queue has no availability', async (t) => {
  const path = `${t.testdir()}/widgets.json`
  writeFileSync(path, JSON.stringify({
    widgets: [
      { id: 'sales', contactFlowId: 'flow-sales', allowedOrigins: [ORIGIN], queueId: 'sales-queue', refuseWhenClosed: true },
      { id: 'other', instanceId: 'instance-2', contactFlowId: 'flow-other', allowedOrigins: [ORIGIN] }
    ]
  }))
  const sim = await startSimulator({ participant: false })
  t.teardown(() => sim.close())
  sim.availability.setQueue('sales-queue', { hours: 'closed' })
  const { app } = await build(t, { CONNECT_QUEUE_ID: 'simulated-queue', WIDGETS_FILE: path, AVAILABILITY_REFRESH: '1 hour' }, { simulator: sim, deps: { availabilityNow: () => THURSDAY_EVENING } })
  await app.availability!.tick()

  t.same((await ask(app, '/chat/availability/sales')).json(), { open: false, reason: 'closed', agentsAvailable: 1, contactsInQueue: 0 })
  t.same((await ask(app)).json(), { open: true, reason: 'open', agentsAvailable: 1, contactsInQueue: 0 })
  const other = await ask(app, '/chat/availability/other')
  t.equal(other.statusCode, 404)
  t.equal(other.json().code, 'AVAILABILITY_NOT_CONFIGURED', 'another instance does not inherit CONNECT_QUEUE_ID')
  t.equal((await ask(app, '/chat/availability/nope')).json().code, 'WIDGET_NOT_FOUND')

  const refused = await app.inject({ method: 'POST', url: '/chat/start/sales', headers: { 'content-type': 'application/json', origin: ORIGIN }, payload: validBody() })
  t.equal(refused.json().code, 'CHAT_CLOSED')
  t.notOk('nextOpen' in refused.json(), 'closed with no opening in sight: no nextOpen')
  t.equal(refused.headers['retry-after'], '3600')
  t.equal((await startChat(app, validBody())).statusCode, 200, 'the default profile does not refuse')
  t.equal(sim.requests.length, 1)
})

t.test('without Redis one replica polls on its own; without a queue there is no poller', async (t) => {
  const clock = { now: THURSDAY_EVENING }
  const { app, sim } = await build(t, { CONNECT_QUEUE_ID: 'simulated-queue', AVAILABILITY_REFRESH: '1 hour' }, { deps: { availabilityNow: () => clock.now } })
  await app.availability!.tick()
  t.equal(app.availability!.polling, true)
  t.equal((await ask(app)).json().reason, 'open')
  sim.availability.setQueue('simulated-queue', { status: 'DISABLED' })
  clock.now += SCHEDULE_REFRESH_MS
  await app.availability!.tick()
  t.same((await ask(app)).json(), { open: false, reason: 'closed', agentsAvailable: 1, contactsInQueue: 0 }, 'a disabled queue is closed, with no opening time')

  const plain = await build(t)
  t.equal(plain.app.availability, undefined)
  const res = await ask(plain.app)
  t.equal(res.statusCode, 404)
  t.equal(res.json().code, 'AVAILABILITY_NOT_CONFIGURED')
})

t.test('the availability rate limit is its own, per client address', async (t) => {
  const { app } = await build(t, { CONNECT_QUEUE_ID: 'simulated-queue', AVAILABILITY_REFRESH: '1 hour', RATE_LIMIT_MAX: '2' })
  await app.availability!.tick()
  let last
  for (let i = 0; i < 300; i++) {
    last = await ask(app)
    if (last.statusCode !== 200) break
  }
  t.equal(last!.statusCode, 200, '300 answers in a minute, above the chat-start limit of 2')
  const limited = await ask(app)
  t.equal(limited.statusCode, 429)
  t.equal(limited.json().code, 'RATE_LIMITED')
  t.match(limited.json().message, /availability/)
  t.ok(Number(limited.headers['retry-after']) >= 1)
  t.equal((await startChat(app, validBody())).statusCode, 200, 'chat starts are counted apart')
})
