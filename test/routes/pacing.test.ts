import t, { type Test } from 'tap'
import { createServer, connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import { startSimulator, type ConnectSimulator, type SimulatorOptions } from '@connect-chat-gateway/simulator'
import { createPacer, type RateChange } from '../../src/connect/pacer.js'
import type { App } from '../../src/app.js'
import { fakeClock } from '../fake-clock.js'
import { build, startChat, until, validBody } from '../helper.js'
import { redisKeyPrefix, redisSkip, redisTestUrl } from '../redis.js'

// Connect's quota in these tests: 5 StartChatContact per second, burst 5. Pacing is set to match.
const QUOTA: SimulatorOptions = { requestRate: { perSecond: 5, burst: 5 } }
const PACING = { CONNECT_RATE_LIMIT: '5', CONNECT_BURST: '5', CONNECT_MAX_CONCURRENCY: '200', RATE_LIMIT_MAX: '1000000' }
// "At once" for a refusal: far below every deadline used here, generous for a busy 2-core machine.
const AT_ONCE_MS = 2_000

interface Outcome { status: number; code?: string; retryAfter?: number; ms: number }

/** `n` simultaneous starts spread over the apps, like a load balancer would. */
function fire (apps: App[], n: number): Promise<Outcome[]> {
  return Promise.all(Array.from({ length: n }, async (_, i) => {
    const started = Date.now()
    const res = await startChat(apps[i % apps.length]!, validBody())
    const retryAfter = res.headers['retry-after']
    return {
      status: res.statusCode,
      code: res.statusCode === 200 ? undefined : res.json().code as string,
      retryAfter: retryAfter === undefined ? undefined : Number(retryAfter),
      ms: Date.now() - started
    }
  }))
}

/**
 * One start per app: a process's first call to Connect is slow (the SDK loads and resolves
 * lazily; on a busy machine, hundreds of ms), which would bunch the first paced calls together; a
 * running service is past that. Connect's bucket is then full again (set anew, not waited for);
 * pacing keeps the warm-up's slots, as it would for starts just before a burst.
 */
async function warm (sim: ConnectSimulator, apps: App[]) {
  for (const app of apps) await startChat(app, validBody())
  sim.setRequestRate(null)
  sim.setRequestRate(QUOTA.requestRate!)
  return { created: sim.stats().created }
}

/**
 * Two replicas sharing Redis and one simulator with Connect's quota (5/s, burst 5), warmed, then 100
 * simultaneous starts spread over them with a 10 s deadline.
 */
async function burstOnTwoReplicas (t: Test, pacing: Record<string, string>) {
  const sim = await startSimulator(QUOTA)
  t.teardown(() => sim.close())
  const env = { ...PACING, ...pacing, REDIS_URL: redisTestUrl(), REDIS_KEY_PREFIX: redisKeyPrefix(t), CHAT_START_TIMEOUT_MS: '10000' }
  const a = await build(t, env, { simulator: sim })
  const b = await build(t, env, { simulator: sim })
  await announced(t, env.REDIS_KEY_PREFIX, 2)
  const before = await warm(sim, [a.app, b.app])
  const outcomes = await fire([a.app, b.app], 100)
  return { sim, a, b, before, outcomes }
}

async function metric (app: App, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = app.metrics.registry.getSingleMetric(name)
  if (!m) throw new Error(`no metric ${name}`)
  const { values } = await m.get()
  return values
    .filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
    .filter((v) => !('metricName' in v) || v.metricName === `${name}_count` || v.metricName === name)
    .reduce((sum, v) => sum + v.value, 0)
}

/**
 * Refusals come at once. A start that did get a slot can still be refused later, when a starved
 * process could not send in time (the slot is then skipped, not used late): a few, never past the deadline.
 */
function checkRefusals (t: Test, outcomes: Outcome[], deadlineMs: number) {
  const refused = outcomes.filter((o) => o.status !== 200)
  t.same([...new Set(refused.map((o) => `${o.status} ${o.code}`))], refused.length > 0 ? ['503 OVERLOADED'] : [], 'every other start: 503 OVERLOADED')
  t.ok(refused.every((o) => o.retryAfter !== undefined && o.retryAfter >= 1), 'each with Retry-After')
  const late = refused.filter((o) => o.ms >= AT_ONCE_MS)
  t.ok(late.length <= refused.length / 10, `refused at once, not after a futile wait (${late.length} of ${refused.length} later than ${AT_ONCE_MS} ms)`)
  const slowest = Math.max(0, ...refused.map((o) => o.ms))
  t.ok(slowest <= deadlineMs + 1_000, `none waited out its deadline (slowest ${slowest} ms)`)
  return refused
}

async function announced (t: Test, prefix: string, replicas: number) {
  const probe = new Redis(redisTestUrl())
  try {
    await until('replicas announced', async () => await probe.zcard(`${prefix}pacing:replicas`) >= replicas, 3_000).catch(() => {})
    t.equal(await probe.zcard(`${prefix}pacing:replicas`), replicas, `${replicas} replicas share the schedule`)
  } finally {
    probe.disconnect()
  }
}

/** A TCP hop to Redis that the test can cut, as a failed Redis node or network would. */
async function redisProxy (t: Test) {
  const target = new URL(redisTestUrl())
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 6379), target.hostname)
    for (const s of [client, upstream]) { sockets.add(s); s.on('error', () => {}); s.on('close', () => sockets.delete(s)) }
    client.pipe(upstream).pipe(client)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const cut = () => { server.close(); for (const s of sockets) s.destroy() }
  t.teardown(cut)
  const { port } = server.address() as { port: number }
  return { url: `redis://127.0.0.1:${port}`, cut }
}

t.test('without Redis, one process paces a burst into the quota: no throttling, the rest refused at once', async (t) => {
  const { app, sim } = await build(t, { ...PACING, CHAT_START_TIMEOUT_MS: '2000' }, { sim: QUOTA })
  await warm(sim, [app])
  const outcomes = await fire([app], 20)
  const ok = outcomes.filter((o) => o.status === 200).length
  // 3 or 4 at once (one token kept for jitter, one perhaps still used by the warm-up), then one
  // per 200 ms until 500 ms before the 2 s deadline:
  // more than the burst means the queue worked; the quota caps it however fast the machine is.
  t.ok(ok > 4 && ok <= 12, `${ok} started`)
  const refused = checkRefusals(t, outcomes, 2_000)
  t.ok(sim.stats().throttled <= 2, `Connect throttled ${sim.stats().throttled}`)
  const tokens = await metric(app, 'ccg_pacing_tokens_total')
  t.ok(tokens >= sim.requests.length, 'every call to Connect, retries too, took a token')
  t.equal(await metric(app, 'ccg_pacing_wait_seconds'), tokens, 'one wait observed per token')
  t.equal(await metric(app, 'ccg_pacing_shed_total'), refused.length)
  t.equal(await metric(app, 'ccg_pacing_queue_length'), 0)
})

t.test('Connect throttles a paced call anyway: retried, pacing slows down, logged and counted', async (t) => {
  const { app, sim, logs } = await build(t, { ...PACING, CONNECT_RATE_LIMIT: '50' })
  sim.script({ type: 'TooManyRequestsException' })
  const res = await startChat(app, validBody())
  t.equal(res.statusCode, 200)
  t.equal(sim.requests.length, 2)
  t.equal(await metric(app, 'ccg_pacing_slowdowns_total'), 1)
  const line = logs().split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((l) => /pacing rate lowered/.test(l.msg))
  t.equal(line?.level, 40)
  // Nothing accepted in the window before: halved, the most one throttle may cut.
  t.match(line, { rate: 25, configuredRate: 50, acceptedPerSecond: 0 })
  t.equal(await metric(app, 'ccg_pacing_rate'), 25, 'the gauge shows the learned rate')
})

t.test('a retry waits for a slot of its own, like a first attempt', async (t) => {
  // 0.5/s: one slot every 2 s (4 s once the throttle halves the pace); the SDK alone would retry within 1 s.
  const { app, sim } = await build(t, { ...PACING, CONNECT_RATE_LIMIT: '0.5', CONNECT_BURST: '1' })
  sim.script({ type: 'TooManyRequestsException' })
  const res = await startChat(app, validBody())
  t.equal(res.statusCode, 200)
  const [first, retry] = sim.requests
  t.ok(retry!.at - first!.at >= 1_900, `retry sent ${retry!.at - first!.at} ms after the throttled attempt`)
})

t.test('a retry that cannot get a slot before the deadline is refused at once, not sent', async (t) => {
  const { app, sim } = await build(t, { ...PACING, CONNECT_RATE_LIMIT: '0.5', CONNECT_BURST: '1', CHAT_START_TIMEOUT_MS: '2000' })
  sim.script({ type: 'TooManyRequestsException' })
  const res = await startChat(app, validBody())
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'OVERLOADED')
  t.ok(Number(res.headers['retry-after']) >= 2)
  t.equal(sim.requests.length, 1, 'Connect was called once')
})

t.test('two replicas sharing Redis', { skip: await redisSkip() }, async (t) => {
  t.test('100 simultaneous starts into a 5/s quota: paced, the rest 503 at once, none past its deadline', async (t) => {
    const { sim, a, b, before, outcomes } = await burstOnTwoReplicas(t, {})
    const ok = outcomes.filter((o) => o.status === 200).length
    // rate x deadline + burst = 55 at most; pacing keeps one burst token and 500 ms for the call.
    t.ok(ok > 4 && ok <= 55, `${ok} started`)
    t.ok(sim.stats().throttled <= 2, `Connect throttled ${sim.stats().throttled} (one shared schedule, not one per replica)`)
    t.equal(sim.stats().created - before.created, ok)
    const refused = checkRefusals(t, outcomes, 10_000)
    t.equal(ok + refused.length, 100)
    t.ok(refused.every((o) => o.retryAfter! <= 11), 'Retry-After: when the queued slots run out, about the deadline')
    const slowest = Math.max(...outcomes.map((o) => o.ms))
    // No 504 among the answers (checked above); the slack is the test process's own slowness.
    t.ok(slowest <= 11_000, `no start waited past its 10 s deadline (slowest ${slowest} ms)`)
    t.ok(await metric(a.app, 'ccg_pacing_tokens_total') + await metric(b.app, 'ccg_pacing_tokens_total') >= sim.requests.length,
      'every call to Connect, retries too, took a token')
    t.equal(await metric(a.app, 'ccg_pacing_shed_total') + await metric(b.app, 'ccg_pacing_shed_total'), refused.length)
  })

  t.test('Redis lost during a burst: each replica paces alone at its share and keeps answering', async (t) => {
    const sim = await startSimulator(QUOTA)
    t.teardown(() => sim.close())
    const proxy = await redisProxy(t)
    const env = { ...PACING, REDIS_URL: proxy.url, REDIS_KEY_PREFIX: redisKeyPrefix(t), CHAT_START_TIMEOUT_MS: '5000' }
    const a = await build(t, env, { simulator: sim })
    const b = await build(t, env, { simulator: sim })
    await announced(t, env.REDIS_KEY_PREFIX, 2)
    const { created } = await warm(sim, [a.app, b.app])

    const before = fire([a.app, b.app], 10)
    await until('the burst is under way', () => sim.stats().created >= created + 5, 10_000)
    proxy.cut()
    // 4.5 s of slots: at their share (2.5/s each) both together fit the quota; at the full rate
    // each, they would send twice what Connect takes and be throttled again and again.
    const after = await fire([a.app, b.app], 60)
    const outcomes = [...await before, ...after]

    checkRefusals(t, outcomes, 5_000)
    const okAfter = after.filter((o) => o.status === 200).length
    // 4.5 s at 5/s plus a burst is at most 27; some do start, paced by each replica alone.
    t.ok(okAfter >= 1 && okAfter <= 30, `${okAfter} chats started after Redis was lost`)
    t.ok(sim.stats().throttled <= 3, `Connect throttled ${sim.stats().throttled}: each replica took only its share`)
    for (const h of [a, b]) {
      t.ok(await metric(h.app, 'ccg_redis_fail_open_total', { use: 'pacing' }) > 0, 'decisions without Redis counted')
      t.match(h.logs(), /pacing without Redis/)
    }
  })

  t.test('pacing set twice too high: the rate drops to the quota, waiting starts re-planned and refused at once', async (t) => {
    const { sim, a, b, before, outcomes } = await burstOnTwoReplicas(t, { CONNECT_RATE_LIMIT: '10', CONNECT_BURST: '10' })
    const ok = outcomes.filter((o) => o.status === 200).length
    t.equal(sim.stats().created - before.created, ok, 'one chat per start')
    const refused = outcomes.filter((o) => o.status !== 200)
    t.same([...new Set(refused.map((o) => `${o.status} ${o.code}`))], ['503 OVERLOADED'], 'every other start: 503 OVERLOADED, none 504')
    t.ok(refused.every((o) => o.retryAfter !== undefined && o.retryAfter >= 1), 'each with Retry-After')
    // Unlearned, this burst was throttled 30 times: the queue kept going at 10/s for its 10 s.
    t.ok(sim.stats().throttled <= 15, `Connect throttled ${sim.stats().throttled}`)
    const changes = [a, b].flatMap((h) => h.logs().split('\n').filter(Boolean).map((l) => JSON.parse(l)))
      .filter((l) => /pacing rate lowered|lowered the pacing rate/.test(l.msg))
    t.comment(JSON.stringify(changes.map((l) => [l.rate, l.acceptedPerSecond, l.replanned, l.shed])))
    // How many calls Connect throttles depends on how fast this machine sends the first burst; the
    // re-planning itself is checked event by event in test/connect/pacer.test.ts.
    const throttled = sim.stats().throttled
    t.ok(throttled === 0 || changes.some((l) => l.msg.startsWith('Connect throttled')), `a throttle was learned from (${throttled} throttled)`)
    t.comment(`waiting starts refused at once when the rate dropped: ${changes.reduce((n, l) => n + l.shed, 0)}`)
    for (const h of [a, b]) {
      const rate = await metric(h.app, 'ccg_pacing_rate')
      t.ok(throttled === 0 || rate < 10, `${rate}/s learned on each replica`)
    }
  })
})

t.test('the learned rate follows a quota that changes during the run, down and back up', async (t) => {
  const rates: Array<[number, RateChange]> = []
  const listeners = new Set<() => void>()
  const pacer = createPacer({
    rate: 5, burst: 5, callReserveMs: 500, learning: { holdMs: 500, stepMs: 200, step: 0.1 },
    events: { rateChanged: (rate, change) => { rates.push([rate, change]); for (const l of listeners) l() } }
  })
  t.teardown(() => pacer.close())
  const { app, sim } = await build(t, { ...PACING, CHAT_START_TIMEOUT_MS: '3000' }, { sim: QUOTA, deps: { pacer } })
  const when = (what: string, check: () => boolean) => new Promise<void>((resolve, reject) => {
    if (check()) { resolve(); return }
    const timer = setTimeout(() => { listeners.delete(listener); reject(new Error(`never happened: ${what}`)) }, 30_000)
    const listener = () => { if (check()) { clearTimeout(timer); listeners.delete(listener); resolve() } }
    listeners.add(listener)
  })
  // Customers keep coming, three at a time, as fast as pacing lets them in.
  let stop = false
  const load = (async () => {
    for (let i = 0; i < 300 && !stop; i++) await fire([app], 3)
  })()
  t.teardown(async () => { stop = true; await load })

  // Another system starts using the account: 2/s are left for the gateway.
  sim.setRequestRate({ perSecond: 2, burst: 2 })
  await when('the rate fell near the new quota', () => rates.some(([rate]) => rate <= 2.5))
  t.ok(rates.filter(([, c]) => c.reason === 'throttled').length >= 1, 'lowered by throttles')
  t.ok(pacer.rate < 5)
  // It stops: the full quota is back, and the rate climbs back to the configured one.
  sim.setRequestRate({ perSecond: 5, burst: 5 })
  const lowest = Math.min(...rates.map(([rate]) => rate))
  await when('back to 5/s', () => rates.at(-1)?.[0] === 5)
  const up = rates.slice(rates.findIndex(([rate]) => rate === lowest))
  t.ok(up.some(([, c]) => c.reason === 'recovering'), `climbed back in steps: ${up.map(([rate]) => rate.toFixed(2)).join(', ')}`)
  stop = true
  await load
})

t.test('the app paces on the clock it is given: a start waits for its slot until that clock reaches it', async (t) => {
  const time = fakeClock()
  // 0.5/s, burst 1: after the first start, the next slot is 2 s away on the app's clock.
  const { app, sim } = await build(t, { ...PACING, CONNECT_RATE_LIMIT: '0.5', CONNECT_BURST: '1' }, { deps: { clock: time.clock } })
  t.equal((await startChat(app, validBody())).statusCode, 200)
  let answered = false
  const second = startChat(app, validBody()).then((res) => { answered = true; return res })
  await until('the second start waits for its slot', async () => await metric(app, 'ccg_pacing_queue_length') === 1, 10_000)
  await time.tick(1_999)
  t.notOk(answered, 'not before its slot')
  t.equal(sim.requests.length, 1)
  await time.tick(1)
  t.equal((await second).statusCode, 200, 'started once the clock reached it')
  t.equal(sim.requests.length, 2)
  const { values } = await app.metrics.registry.getSingleMetric('ccg_pacing_wait_seconds')!.get()
  t.equal(values.find((v) => 'metricName' in v && v.metricName === 'ccg_pacing_wait_seconds_sum')?.value, 2, 'waited exactly 2 s, on that clock')
})
