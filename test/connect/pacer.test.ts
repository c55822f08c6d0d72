import t, { type Test } from 'tap'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { systemClock, type Clock } from '../../src/clock.js'
import { Overloaded } from '../../src/errors.js'
import { paceAttempts } from '../../src/connect/chat-starter.js'
import { createPacer, type PacerEvents, type PacerOptions, type RateChange, type TokenBucketPacer } from '../../src/connect/pacer.js'
import { createRedis } from '../../src/redis.js'
import { createStateTable } from '../../src/dynamodb.js'
import { DYNALITE_CREDENTIALS, startDynalite } from '../dynalite.js'
import { fakeClock } from '../fake-clock.js'
import { redisKeyPrefix, redisSkip, redisTestUrl, slowRelay } from '../redis.js'

// Without Redis the pacer runs on a fake clock: waits are exact and the tests move time instead
// of sleeping. With Redis the shared schedule keeps Redis's own time, so those waits are real:
// checked from below (a slot never comes early) and bounded generously from above.
const EARLY = 5

function recorder () {
  const seen = {
    granted: [] as number[], queue: [] as number[], shed: [] as number[], rates: [] as Array<[number, RateChange]>,
    abandoned: 0, returned: [] as number[], redisFailed: 0, fallback: [] as Array<[boolean, { replicas: number; rate: number }]>
  }
  const listeners = new Set<() => void>()
  const note = () => { for (const l of listeners) l() }
  const events: PacerEvents = {
    granted: (ms) => { seen.granted.push(ms); note() },
    queue: (n) => { seen.queue.push(n); note() },
    shed: (s) => { seen.shed.push(s); note() },
    rateChanged: (rate, change) => { seen.rates.push([rate, change]); note() },
    abandoned: () => { seen.abandoned++; note() },
    returned: (n) => { seen.returned.push(n); note() },
    redisFailed: () => { seen.redisFailed++; note() },
    fallback: (alone, details) => seen.fallback.push([alone, details])
  }
  /** Resolves once `check` holds after some event; fails the test after 10 s (a bound, never reached when it works). */
  const when = (what: string, check: () => boolean) => new Promise<void>((resolve, reject) => {
    if (check()) { resolve(); return }
    const timer = setTimeout(() => { listeners.delete(listener); reject(new Error(`never happened: ${what}`)) }, 10_000)
    const listener = () => { if (check()) { clearTimeout(timer); listeners.delete(listener); resolve() } }
    listeners.add(listener)
  })
  return { seen, events, when }
}

/** Starts `n` acquires at once; resolves with each one's wait in ms (or the error it threw). */
async function burst (pacers: ReturnType<typeof createPacer>[], n: number, deadlineMs = 5_000, signal = new AbortController().signal, clock: Clock = systemClock) {
  const started = clock.now()
  return Promise.all(Array.from({ length: n }, (_, i) =>
    pacers[i % pacers.length]!.acquire(started + deadlineMs, signal).then(() => clock.now() - started, (err: unknown) => err)))
}

/** Polls until `check` holds, for what is real I/O (Redis, DynamoDB); fails naming `what` after about 2 s. */
async function until (what: string, check: () => boolean | Promise<boolean>) {
  for (let i = 0; i < 200 && !(await check()); i++) await sleep(10)
  if (!(await check())) throw new Error(`never happened: ${what}`)
}

function pacer (t: Test, options: Partial<PacerOptions> = {}) {
  const p = createPacer({ rate: 10, burst: 4, ...options })
  t.teardown(() => p.close())
  return p
}

/** A pacer without Redis on a fake clock; `clock.runAll()` plays out every wait. */
function fakePacer (t: Test, options: Partial<PacerOptions> = {}) {
  const clock = fakeClock()
  const p = pacer(t, { ...options, clock: clock.clock })
  /** `burst` on this pacer's clock, with time moved until every start has its answer. */
  const burstNow = async (n: number, deadlineMs?: number, signal?: AbortSignal) => {
    const all = burst([p], n, deadlineMs, signal, clock.clock)
    await clock.runAll()
    return all
  }
  return { p, clock, burstNow }
}

/** Each wait on the fake clock: exactly one interval after the one before. */
function onSchedule (t: Test, waits: number[], intervalMs: number, what: string) {
  waits.forEach((w, i) => t.ok(Math.abs(w - (i + 1) * intervalMs) < 1, `${what} ${i + 1} after ${w} ms`))
}

t.test('no Redis: the burst goes at once, then one start per interval', async (t) => {
  const { seen, events } = recorder()
  // 10/s with a burst of 4: one token held back for jitter, so 3 at once, then every 100 ms.
  const { burstNow } = fakePacer(t, { events })
  const waits = await burstNow(6) as number[]
  t.same(waits.slice(0, 3), [0, 0, 0], 'immediate')
  onSchedule(t, waits.slice(3), 100, 'slot')
  t.equal(seen.granted.length, 6)
  t.same(seen.shed, [])
  t.equal(seen.queue.at(-1), 0, 'queue empty again')
  t.ok(Math.max(...seen.queue) >= 3, 'waiting starts were counted')
})

t.test('a start whose slot comes after its deadline is refused at once, Retry-After from the queue', async (t) => {
  const { seen, events } = recorder()
  const { p, clock, burstNow } = fakePacer(t, { rate: 1, burst: 1, events })
  const waiting = new AbortController()
  const first = await burstNow(1)
  t.equal(first[0], 0)
  // Two more take the slots at 1 s and 2 s; they are aborted below, so the test need not wait.
  const queued = burst([p], 2, 10_000, waiting.signal, clock.clock)
  await clock.tick(50)
  const started = clock.clock.now()
  const err = await p.acquire(started + 2_500, new AbortController().signal).catch((e: unknown) => e)
  t.type(err, Overloaded)
  t.equal((err as Overloaded).retryAfterSeconds, 3, 'the queue ahead holds 3 s of slots')
  t.equal(clock.clock.now(), started, 'refused at once, not after its 2.5 s deadline')
  t.same(seen.shed, [3])

  waiting.abort()
  const aborted = await queued
  t.ok(aborted.every((e) => e instanceof Error && e.name === 'AbortError'), 'waiting starts give up when their signal aborts')
  t.equal(seen.queue.at(-1), 0)
})

t.test('the call reserve: a slot too close to the deadline is refused', async (t) => {
  const { p, clock, burstNow } = fakePacer(t, { rate: 1, burst: 1, callReserveMs: 500 })
  await burstNow(1)
  // The next slot is 1 s away: within the 1.2 s deadline, but not with 500 ms kept for the call.
  const err = await p.acquire(clock.clock.now() + 1_200, new AbortController().signal).catch((e: unknown) => e)
  t.type(err, Overloaded)
})

t.test('the local queue is bounded: beyond maxQueue, refused at once', async (t) => {
  const { p, clock, burstNow } = fakePacer(t, { rate: 1, burst: 1, maxQueue: 1 })
  await burstNow(1)
  const waiting = new AbortController()
  const queued = burst([p], 1, 10_000, waiting.signal, clock.clock)
  await clock.tick(20)
  const err = await p.acquire(clock.clock.now() + 10_000, new AbortController().signal).catch((e: unknown) => e)
  t.type(err, Overloaded)
  t.ok((err as Overloaded).retryAfterSeconds! >= 1)
  waiting.abort()
  await queued
})

t.test('Connect throttling lowers the rate to the accepted calls per second, once per debounce, down to a floor', async (t) => {
  const { seen, events } = recorder()
  const { p } = fakePacer(t, { rate: 10, burst: 1, events, learning: { debounceMs: 10_000 } })
  t.equal(p.rate, 10)
  // Connect accepted 7 calls in the last second, then throttled: it gives 7/s, not 10 and not 5.
  for (let i = 0; i < 7; i++) p.afterAttempt(undefined)
  p.afterAttempt('TooManyRequestsException')
  p.onThrottled()
  t.equal(p.rate, 7)
  t.same(seen.rates.map(([rate, c]) => [rate, c.reason, c.measured]), [[7, 'throttled', 7]], 'throttles inside the debounce count once')

  const { p: q } = fakePacer(t, { rate: 10, burst: 1, learning: { debounceMs: 0, floor: 0.25 } })
  for (let i = 0; i < 5; i++) q.onThrottled()
  t.equal(q.factor, 0.25, 'nothing accepted: halved per throttle, never below the floor')
  const { p: r } = fakePacer(t, { rate: 10, burst: 1 })
  for (let i = 0; i < 30; i++) r.afterAttempt(undefined)
  r.afterAttempt('ThrottlingException')
  t.equal(r.rate, 9, 'more accepted than paced: still at least a 10% cut')
})

t.test('after a quiet hold the rate climbs back step by step, one event per step', async (t) => {
  const { seen, events } = recorder()
  const { p, clock } = fakePacer(t, { rate: 10, burst: 1, events, learning: { holdMs: 20, stepMs: 20, step: 0.2 } })
  p.onThrottled()
  t.equal(p.rate, 5)
  await clock.runAll()
  t.equal(seen.rates.at(-1)?.[0], 10, 'back to the configured rate')
  const [first, ...steps] = seen.rates.map(([rate, c]) => [Number(rate.toFixed(3)), c.reason] as const)
  t.same(first, [5, 'throttled'])
  // A late timer may take two steps in one event; each event is still one change, upward.
  t.ok(steps.length >= 1 && steps.every(([rate, reason], i) => reason === 'recovering' && (i === 0 || rate > steps[i - 1]![0]) &&
    (rate === 10 || (rate - 5) % 2 === 0)), `steps up: ${steps.map(([rate]) => rate).join(', ')}`)
  t.equal(p.factor, 1)
})

t.test('a lower rate re-plans the waiting starts at once: those now past their deadline are refused with Retry-After', async (t) => {
  const { seen, events } = recorder()
  const { p, clock } = fakePacer(t, { rate: 10, burst: 1, events })
  const settled: Array<'granted' | Overloaded> = []
  /** Slots granted by the time each refusal was answered. */
  const grantedWhenRefused: number[] = []
  const started = clock.clock.now()
  // Slots every 100 ms: all ten fit the 1.5 s deadline at 10/s; at 5/s the last ones do not.
  const all = Promise.all(Array.from({ length: 10 }, () => p.acquire(started + 1_500, new AbortController().signal)
    .then(() => { settled.push('granted') }, (err: Overloaded) => { settled.push(err); grantedWhenRefused.push(seen.granted.length) })))
  await clock.settle()
  t.equal(seen.queue.at(-1), 9, 'nine waiting')
  const grantedBefore = seen.granted.length
  p.onThrottled()
  const [[rate, change]] = seen.rates as [[number, RateChange]]
  t.equal(rate, 5)
  t.ok(change.shed >= 1 && change.replanned >= 1, `re-planned ${change.replanned}, refused ${change.shed}`)
  const refused = () => settled.filter((e) => e instanceof Overloaded)
  await clock.settle()
  t.equal(refused().length, change.shed, 'the refused ones answered')
  t.ok(grantedWhenRefused.every((n) => n === grantedBefore), 'refused at once, before any re-planned start got its slot')
  t.ok(refused().every((e) => e.retryAfterSeconds! >= 1), 'each refused with Retry-After')
  t.equal(seen.shed.length, change.shed)
  await clock.runAll()
  await all
  t.equal(settled.filter((e) => e === 'granted').length, 10 - change.shed, 'the re-planned ones still start')
})

t.test('a start that leaves while waiting releases its place at once; its slot goes to the next one', async (t) => {
  const { seen, events } = recorder()
  const { p, clock } = fakePacer(t, { rate: 1, burst: 1, events })
  const now = () => clock.clock.now()
  await p.acquire(now() + 5_000, new AbortController().signal)
  const stays = new AbortController()
  const leaves = new AbortController()
  const first = p.acquire(now() + 10_000, stays.signal).catch((e: unknown) => e) // slot at 1 s
  const second = p.acquire(now() + 10_000, leaves.signal).catch((e: unknown) => e) // slot at 2 s
  await clock.settle()
  t.equal(seen.queue.at(-1), 2, 'two waiting')
  leaves.abort()
  t.equal((await second as Error).name, 'AbortError')
  t.equal(seen.queue.at(-1), 1, 'no longer counted as waiting')
  t.equal(seen.abandoned, 1)
  t.same(seen.returned, [1], 'the last slot came back to the schedule')
  // With 2.7 s left, the freed 2 s slot fits; without it the next slot would be at 3 s and refused.
  const next = new AbortController()
  const third = p.acquire(now() + 2_700, next.signal).catch((e: unknown) => e)
  await clock.settle()
  t.equal(seen.queue.at(-1), 2, 'the newcomer waits in the freed slot')
  t.same(seen.shed, [], 'nobody refused')
  stays.abort()
  next.abort()
  t.equal((await first as Error).name, 'AbortError')
  t.equal((await third as Error).name, 'AbortError')
  t.equal(seen.queue.at(-1), 0)
})

t.test('a caller gone during the backoff: no slot taken, the attempt is not sent', async (t) => {
  const { seen, events } = recorder()
  const { p, clock } = fakePacer(t, { rate: 1, burst: 1, events })
  const now = () => clock.clock.now()
  const gone = new AbortController()
  const sent: number[] = []
  const attempt = paceAttempts(p, now() + 10_000, gone.signal)(async () => {
    sent.push(now())
    return { output: {}, response: {} }
  }, {})
  await p.acquire(now() + 5_000, new AbortController().signal)
  await attempt({ input: {}, request: {} })
  t.equal(sent.length, 1)
  // The retry waits for a slot of its own (1 s away); the caller leaves meanwhile.
  const retry = attempt({ input: {}, request: {} }).catch((e: unknown) => e)
  await clock.settle()
  t.equal(seen.queue.at(-1), 1, 'the retry waits for its slot')
  gone.abort()
  t.equal((await retry as Error).name, 'AbortError')
  t.equal(sent.length, 1, 'the retry was never sent')
  const granted = seen.granted.length
  const queued = seen.queue.length
  t.equal((await attempt({ input: {}, request: {} }).catch((e: unknown) => e) as Error).name, 'AbortError', 'a retry after the caller left')
  t.equal(seen.granted.length, granted)
  t.equal(seen.queue.length, queued, 'did not even ask for a slot')
  t.equal(sent.length, 1)
})

t.test('attempts: a retry reserves a slot of its own; a throttled one also slows the pace', async (t) => {
  const { p, clock } = fakePacer(t, { rate: 1, burst: 1 })
  const now = () => clock.clock.now()
  const sent: number[] = []
  const attempt = paceAttempts(p, now() + 500, new AbortController().signal)(async () => {
    sent.push(now())
    return { output: {}, response: {} }
  }, {})
  await p.acquire(now() + 5_000, new AbortController().signal) // the first attempt's slot, the only one
  await attempt({ input: {}, request: {} })
  t.equal(sent.length, 1, 'the first attempt goes on the slot its caller reserved')
  const err = await attempt({ input: {}, request: {} }).catch((e: unknown) => e)
  t.type(err, Overloaded, 'no slot for the retry before the deadline: it is not sent')
  t.equal(sent.length, 1)

  p.afterAttempt('InternalServiceException')
  t.equal(p.factor, 1)
  p.afterAttempt('TooManyRequestsException')
  t.equal(p.factor, 0.9, 'Connect had accepted all we paced (one call in the window): a 10% cut')
})

t.test('attempts held back by a busy process and released together leave at most the burst at once', async (t) => {
  const { p, clock } = fakePacer(t, { rate: 10, burst: 4 })
  const started = clock.clock.now()
  const all = Promise.all(Array.from({ length: 5 }, () =>
    p.beforeAttempt(1, started + 5_000, new AbortController().signal).then(() => clock.clock.now() - started)))
  await clock.runAll()
  const left = await all
  t.same(left.slice(0, 3), [0, 0, 0], 'the burst at once')
  onSchedule(t, left.slice(3), 100, 'attempt')
})

t.test('a Redis that never answers: the process paces alone at the full rate', async (t) => {
  const dead = createRedis({ url: 'redis://127.0.0.1:1' })
  dead.on('error', () => {})
  t.teardown(() => dead.disconnect())
  const { seen, events, when } = recorder()
  const { p, clock } = fakePacer(t, { redis: dead, events })
  const all = burst([p], 4, 5_000, undefined, clock.clock)
  // Redis's refusals are real I/O; the waits after them are on the fake clock.
  await when('every decision taken without Redis', () => seen.redisFailed === 4)
  await clock.tick(1_000)
  const waits = await all as number[]
  t.equal(seen.redisFailed, 4)
  t.same(seen.fallback, [[true, { replicas: 1, rate: 10 }]])
  t.equal(waits[3], 100, 'still paced')
})

t.test('Redis', { skip: await redisSkip() }, async (t) => {
  async function replica (t: Test, prefix: string, options: Partial<PacerOptions> = {}) {
    const redis = createRedis({ url: redisTestUrl() })
    redis.on('error', () => {})
    t.teardown(() => redis.disconnect())
    await once(redis, 'ready')
    return { redis, pacer: pacer(t, { redis, keyPrefix: prefix, heartbeatMs: 50, ...options }) }
  }

  t.test('two replicas share one schedule', async (t) => {
    const prefix = redisKeyPrefix(t)
    const a = await replica(t, prefix)
    const b = await replica(t, prefix)
    await until('both replicas announced', () => a.pacer.replicas === 2 && b.pacer.replicas === 2)
    // Each alone would let 3 through at once; together they still only get 3, then one per 100 ms.
    const waits = (await burst([a.pacer, b.pacer], 6) as number[]).sort((x, y) => x - y)
    waits.slice(3).forEach((w, i) => t.ok(w >= (i + 1) * 100 - EARLY, `slot ${i + 1} after ${w} ms`))

    const probe = new Redis(redisTestUrl())
    t.teardown(() => probe.disconnect())
    await a.pacer.close()
    t.equal(await probe.zcard(`${prefix}pacing:replicas`), 1, 'a closed replica leaves at once')
  })

  t.test('a lowered rate is shared: measured over all replicas, and the others re-plan their waiting starts at once', async (t) => {
    const prefix = redisKeyPrefix(t)
    const ra = recorder()
    const rb = recorder()
    const a = await replica(t, prefix, { events: ra.events })
    const b = await replica(t, prefix, { events: rb.events })
    const probe = new Redis(redisTestUrl())
    t.teardown(() => probe.disconnect())
    // Calls accepted by Connect on both replicas: 6 in the last second, for the deployment.
    for (let i = 0; i < 4; i++) a.pacer.afterAttempt(undefined)
    for (let i = 0; i < 2; i++) b.pacer.afterAttempt(undefined)
    await until('accepted calls recorded', async () => (await probe.zcard(`${prefix}pacing:accepted`)) === 6)
    // b has starts waiting on the shared schedule: 3 at once, then every 100 ms, deadline 1.2 s.
    const started = Date.now()
    const waiting = Promise.all(Array.from({ length: 10 }, () =>
      b.pacer.acquire(started + 1_200, new AbortController().signal).then(() => 'granted', (e: unknown) => e)))
    await until('all ten reserved', async () => {
      const [seconds, micros] = await probe.time()
      return Number(await probe.get(`${prefix}pacing:bucket`)) - (Number(seconds) * 1000 + Number(micros) / 1000) > 600
    })

    a.pacer.afterAttempt('TooManyRequestsException')
    await ra.when('a lowered the rate', () => ra.seen.rates.length === 1)
    t.same(ra.seen.rates.map(([rate, c]) => [rate, c.reason, c.measured]), [[6, 'throttled', 6]])
    await rb.when('b heard it', () => rb.seen.rates.length === 1)
    const [[rate, change]] = rb.seen.rates as [[number, RateChange]]
    t.equal(rate, 6)
    t.equal(change.reason, 'shared')
    t.ok(change.replanned + change.shed >= 5, `b re-planned ${change.replanned} and refused ${change.shed} at once`)
    t.equal(b.pacer.rate, 6)

    // b is throttled too, by a call sent before it heard: the same event, counted once.
    b.pacer.afterAttempt('TooManyRequestsException')
    const outcomes = await waiting
    t.equal(rb.seen.rates.length, 1, 'one change, not one per replica')
    t.equal(outcomes.filter((o) => o instanceof Overloaded).length, rb.seen.shed.length, 'every refusal went through the pacer')
    t.ok(outcomes.filter((o) => o === 'granted').length >= 3)
  })

  t.test('the replica that learns reports its throttle once, as its own, even when it hears its record before its answer', async (t) => {
    const prefix = redisKeyPrefix(t)
    // a talks to Redis through a relay that can hold back the answers on a's first connection (its
    // commands) but not on its second (the subscription): a hears its own PUBLISH first.
    const relay = await slowRelay(t, redisTestUrl())
    const redis = createRedis({ url: relay.url, commandTimeoutMs: 5_000 })
    redis.on('error', () => {})
    t.teardown(() => redis.disconnect())
    await once(redis, 'ready')
    const ra = recorder()
    const rb = recorder()
    const a = pacer(t, { redis, keyPrefix: prefix, heartbeatMs: 50, events: ra.events })
    await replica(t, prefix, { events: rb.events })
    const probe = new Redis(redisTestUrl())
    t.teardown(() => probe.disconnect())
    await until('both replicas listening', async () => {
      const [, listeners] = await probe.pubsub('NUMSUB', `${prefix}pacing:rate`) as [string, number]
      return listeners === 2
    })
    relay.slow(300, (connection) => connection === 0)
    for (let i = 0; i < 4; i++) a.afterAttempt(undefined)
    a.afterAttempt('TooManyRequestsException')
    await rb.when('b heard the lowered rate', () => rb.seen.rates.length === 1)
    await ra.when('a reported it', () => ra.seen.rates.length >= 1)
    relay.slow(0)
    // A reservation answers with the record in force, a's own: nothing more to report.
    await a.acquire(Date.now() + 5_000, new AbortController().signal)
    t.same(ra.seen.rates.map(([rate, c]) => [rate, c.reason]), [[5, 'throttled']], 'one change on a, reported as its own throttle')
    t.equal(ra.seen.rates[0]?.[1].measured, 4, 'with what a measured')
    t.same(rb.seen.rates.map(([rate, c]) => [rate, c.reason]), [[5, 'shared']], 'b heard it as another replica\'s')
  })

  t.test('a start that leaves gives its slot back to the shared schedule', async (t) => {
    const prefix = redisKeyPrefix(t)
    const ra = recorder()
    const rb = recorder()
    const a = await replica(t, prefix, { rate: 1, burst: 1, events: ra.events })
    const b = await replica(t, prefix, { rate: 1, burst: 1, events: rb.events })
    await a.pacer.acquire(Date.now() + 5_000, new AbortController().signal)
    const stays = new AbortController()
    const leaves = new AbortController()
    const first = a.pacer.acquire(Date.now() + 10_000, stays.signal).catch((e: unknown) => e) // slot at 1 s
    await ra.when('first waiting', () => ra.seen.queue.at(-1) === 1)
    const second = a.pacer.acquire(Date.now() + 10_000, leaves.signal).catch((e: unknown) => e) // slot at 2 s
    await ra.when('second waiting', () => ra.seen.queue.at(-1) === 2)
    leaves.abort()
    t.equal((await second as Error).name, 'AbortError')
    t.equal(ra.seen.queue.at(-1), 1, 'no longer counted as waiting')
    await ra.when('slot returned', () => ra.seen.returned.length === 1)
    t.same(ra.seen.returned, [1])
    // Another replica now gets the 2 s slot: it fits 2.7 s, where the 3 s one would be refused.
    const next = new AbortController()
    const third = b.pacer.acquire(Date.now() + 2_700, next.signal).catch((e: unknown) => e)
    await rb.when('the other replica waits in the freed slot', () => rb.seen.queue.at(-1) === 1)
    t.same(rb.seen.shed, [])
    stays.abort()
    next.abort()
    await first
    await third
  })

  t.test('Redis lost: a replica paces alone at its share, after the slots already handed out', async (t) => {
    const prefix = redisKeyPrefix(t)
    const { seen, events } = recorder()
    const a = await replica(t, prefix, { events })
    const b = await replica(t, prefix)
    await until('both replicas announced', () => a.pacer.replicas === 2 && b.pacer.replicas === 2)
    await burst([a.pacer], 3) // the shared burst is used up; the schedule runs 300 ms ahead
    a.redis.disconnect()
    // Alone at 5/s (half of 10/s, two replicas), burst 1, starting once the shared slots are gone.
    const waits = await burst([a.pacer], 2) as number[]
    t.ok(seen.redisFailed >= 2)
    t.same(seen.fallback, [[true, { replicas: 2, rate: 5 }]])
    t.ok(waits[0]! >= 300 + 200 - EARLY, `first alone after ${waits[0]} ms`)
    t.ok(waits[1]! >= 300 + 400 - EARLY, `second alone after ${waits[1]} ms`)

    await a.redis.connect()
    await burst([a.pacer], 1)
    t.same(seen.fallback.at(-1), [false, { replicas: 2, rate: 10 }], 'shared again once Redis is back')
  })
})

t.test('DynamoDB', async (t) => {
  const dynalite = await startDynalite(t)

  /** Two pacers over one table, on one fake clock. */
  function replicas (t: Test, options: Partial<PacerOptions> = {}) {
    const clock = fakeClock()
    const table = dynalite.table(t)
    const [a, b] = [0, 1].map(() => pacer(t, { shared: { table }, clock: clock.clock, ...options })) as [TokenBucketPacer, TokenBucketPacer]
    return { clock, a, b, now: () => clock.clock.now() }
  }

  t.test('two replicas share one schedule: together they get the burst once, then one start per interval', async (t) => {
    const { seen, events } = recorder()
    const { clock, a, b } = replicas(t, { events })
    const all = burst([a, b], 6, 5_000, undefined, clock.clock)
    // The reservations are real I/O; the waits after them are on the fake clock.
    await until('every start has its slot', () => seen.granted.length + clock.timers() === 6)
    await clock.runAll()
    const waits = (await all as number[]).sort((x, y) => x - y)
    t.same(waits.slice(0, 3), [0, 0, 0], 'the burst at once, for both replicas together')
    onSchedule(t, waits.slice(3), 100, 'slot')
    t.same(seen.shed, [])
  })

  t.test('a start whose slot comes after its deadline is refused at once; it never waits past its own deadline', async (t) => {
    const { seen, events } = recorder()
    const { clock, a, b, now } = replicas(t, { rate: 1, burst: 1, events })
    await a.acquire(now() + 5_000, new AbortController().signal)
    const started = now()
    const err = await b.acquire(started + 800, new AbortController().signal).catch((e: unknown) => e)
    t.type(err, Overloaded, 'the next slot is 1 s away, past the 800 ms deadline')
    t.equal((err as Overloaded).retryAfterSeconds, 1)
    t.equal(now(), started, 'refused at once, without waiting')
    const fits = b.acquire(started + 1_200, new AbortController().signal).then(() => now() - started)
    await until('the start that fits waits for its slot', () => clock.timers() === 1)
    await clock.runAll()
    t.equal(await fits, 1_000, 'the refused one took no slot: the next gets the 1 s slot')
    t.same(seen.shed, [1])
  })

  t.test('a start that leaves gives its slot back: another replica gets it', async (t) => {
    const { seen, events, when } = recorder()
    const { clock, a, b, now } = replicas(t, { rate: 1, burst: 1, events })
    await a.acquire(now() + 5_000, new AbortController().signal)
    const leaves = new AbortController()
    const left = a.acquire(now() + 10_000, leaves.signal).catch((e: unknown) => e) // slot at 1 s
    await until('waiting for its slot', () => clock.timers() === 1)
    leaves.abort()
    t.equal((await left as Error).name, 'AbortError')
    await when('slot returned', () => seen.returned.length === 1)
    const started = now()
    const next = b.acquire(started + 1_500, new AbortController().signal).then(() => now() - started)
    await until('the other replica waits in the freed slot', () => clock.timers() === 1)
    await clock.runAll()
    t.equal(await next, 1_000)
  })

  t.test('Connect throttling lowers this replica\'s rate only: no channel tells the others', async (t) => {
    const { clock, a, b } = replicas(t, { rate: 10, burst: 1 })
    a.afterAttempt('TooManyRequestsException')
    t.equal(a.rate, 5)
    t.equal(b.rate, 10)
    t.equal(a.replicas, 1, 'no roster: each replica counts itself alone')
    await clock.settle()
  })

  t.test('a state table that cannot answer: the process paces alone at the full rate', async (t) => {
    const { seen, events, when } = recorder()
    const clock = fakeClock()
    const table = createStateTable({ name: dynalite.tableName, overrides: { endpoint: 'http://127.0.0.1:1', credentials: DYNALITE_CREDENTIALS } })
    t.teardown(() => table.client.destroy())
    const p = pacer(t, { shared: { table }, clock: clock.clock, events })
    const all = burst([p], 4, 5_000, undefined, clock.clock)
    await when('every decision taken without the table', () => seen.redisFailed === 4)
    await clock.tick(1_000)
    t.same((await all as number[]).sort((x, y) => x - y), [0, 0, 0, 100], 'still paced')
    t.same(seen.fallback, [[true, { replicas: 1, rate: 10 }]])
  })
})
