import t, { type Test } from 'tap'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { Overloaded } from '../../src/errors.js'
import { createPacer, paceAttempts, type PacerEvents, type PacerOptions } from '../../src/connect/pacer.js'
import { createRedis } from '../../src/redis.js'
import { redisKeyPrefix, redisSkip, redisTestUrl } from '../redis.js'

// Waits are real (the pacer sleeps), so they are checked from below (a slot never comes early)
// and bounded generously from above; the machine is shared with other test runs.
const EARLY = 5

function recorder () {
  const seen = { granted: [] as number[], queue: [] as number[], shed: [] as number[], slowedDown: [] as number[], redisFailed: 0, fallback: [] as Array<[boolean, { replicas: number; rate: number }]> }
  const events: PacerEvents = {
    granted: (ms) => seen.granted.push(ms),
    queue: (n) => seen.queue.push(n),
    shed: (s) => seen.shed.push(s),
    slowedDown: (f) => seen.slowedDown.push(f),
    redisFailed: () => { seen.redisFailed++ },
    fallback: (alone, details) => seen.fallback.push([alone, details])
  }
  return { seen, events }
}

/** Starts `n` acquires at once; resolves with each one's wait in ms (or the error it threw). */
async function burst (pacers: ReturnType<typeof createPacer>[], n: number, deadlineMs = 5_000, signal = new AbortController().signal) {
  const started = Date.now()
  return Promise.all(Array.from({ length: n }, (_, i) =>
    pacers[i % pacers.length]!.acquire(started + deadlineMs, signal).then(() => Date.now() - started, (err: unknown) => err)))
}

function pacer (t: Test, options: Partial<PacerOptions> = {}) {
  const p = createPacer({ rate: 10, burst: 4, ...options })
  t.teardown(() => p.close())
  return p
}

t.test('no Redis: the burst goes at once, then one start per interval', async (t) => {
  const { seen, events } = recorder()
  // 10/s with a burst of 4: one token held back for jitter, so 3 at once, then every 100 ms.
  const waits = await burst([pacer(t, { events })], 6) as number[]
  for (const w of waits.slice(0, 3)) t.ok(w < 1_000, `immediate: ${w} ms`)
  waits.slice(3).forEach((w, i) => t.ok(w >= (i + 1) * 100 - EARLY && w < 3_000, `slot ${i + 1} after ${w} ms`))
  t.equal(seen.granted.length, 6)
  t.same(seen.shed, [])
  t.equal(seen.queue.at(-1), 0, 'queue empty again')
  t.ok(Math.max(...seen.queue) >= 3, 'waiting starts were counted')
})

t.test('a start whose slot comes after its deadline is refused at once, Retry-After from the queue', async (t) => {
  const { seen, events } = recorder()
  const p = pacer(t, { rate: 1, burst: 1, events })
  const waiting = new AbortController()
  const first = await burst([p], 1)
  t.ok((first[0] as number) < 1_000)
  // Two more take the slots at 1 s and 2 s; they are aborted below, so the test need not wait.
  const queued = burst([p], 2, 10_000, waiting.signal)
  await sleep(50)
  const started = Date.now()
  const err = await p.acquire(started + 2_500, new AbortController().signal).catch((e: unknown) => e)
  const tookMs = Date.now() - started
  t.type(err, Overloaded)
  t.equal((err as Overloaded).retryAfterSeconds, 3, 'the queue ahead holds 3 s of slots')
  t.ok(tookMs < 1_000, `refused at once (${tookMs} ms), not after its 2.5 s deadline`)
  t.same(seen.shed, [3])

  waiting.abort()
  const aborted = await queued
  t.ok(aborted.every((e) => e instanceof Error && e.name === 'AbortError'), 'waiting starts give up when their signal aborts')
  t.equal(seen.queue.at(-1), 0)
})

t.test('the call reserve: a slot too close to the deadline is refused', async (t) => {
  const p = pacer(t, { rate: 1, burst: 1, callReserveMs: 500 })
  await burst([p], 1)
  // The next slot is 1 s away: within the 1.2 s deadline, but not with 500 ms kept for the call.
  const err = await p.acquire(Date.now() + 1_200, new AbortController().signal).catch((e: unknown) => e)
  t.type(err, Overloaded)
})

t.test('the local queue is bounded: beyond maxQueue, refused at once', async (t) => {
  const p = pacer(t, { rate: 1, burst: 1, maxQueue: 1 })
  await burst([p], 1)
  const waiting = new AbortController()
  const queued = burst([p], 1, 10_000, waiting.signal)
  await sleep(20)
  const err = await p.acquire(Date.now() + 10_000, new AbortController().signal).catch((e: unknown) => e)
  t.type(err, Overloaded)
  t.ok((err as Overloaded).retryAfterSeconds! >= 1)
  waiting.abort()
  await queued
})

t.test('Connect throttling slows the pace once per debounce, down to a floor, then it recovers', async (t) => {
  const { seen, events } = recorder()
  const p = pacer(t, { rate: 10, burst: 1, events, slowdown: { debounceMs: 10_000, holdMs: 300, recoverMs: 300 } })
  t.equal(p.factor, 1)
  p.onThrottled()
  p.onThrottled()
  t.equal(p.factor, 0.5)
  t.same(seen.slowedDown, [0.5], 'throttles inside the debounce count once')
  // At half of 10/s, one start every 200 ms.
  const waits = await burst([p], 2) as number[]
  t.ok(waits[1]! >= 200 - EARLY, `second start after ${waits[1]} ms`)
  await sleep(700)
  t.equal(p.factor, 1, 'back to the full rate after hold and recovery')

  const q = pacer(t, { rate: 10, burst: 1, slowdown: { debounceMs: 0, floor: 0.25 } })
  for (let i = 0; i < 5; i++) { q.onThrottled(); await sleep(2) }
  t.equal(q.factor, 0.25, 'never below the floor')
})

t.test('attempts: a retry reserves a slot of its own; a throttled one also slows the pace', async (t) => {
  const p = pacer(t, { rate: 1, burst: 1 })
  const sent: number[] = []
  const attempt = paceAttempts(p, Date.now() + 500, new AbortController().signal)(async () => {
    sent.push(Date.now())
    return { output: {}, response: {} }
  }, {})
  await p.acquire(Date.now() + 5_000, new AbortController().signal) // the first attempt's slot, the only one
  await attempt({ input: {}, request: {} })
  t.equal(sent.length, 1, 'the first attempt goes on the slot its caller reserved')
  const err = await attempt({ input: {}, request: {} }).catch((e: unknown) => e)
  t.type(err, Overloaded, 'no slot for the retry before the deadline: it is not sent')
  t.equal(sent.length, 1)

  p.onRetry('InternalServiceException')
  t.equal(p.factor, 1)
  p.onRetry('TooManyRequestsException')
  t.equal(p.factor, 0.5)
})

t.test('attempts held back by a busy process and released together leave at most the burst at once', async (t) => {
  const p = pacer(t, { rate: 10, burst: 4 })
  const started = Date.now()
  const left = await Promise.all(Array.from({ length: 5 }, () =>
    p.beforeAttempt(1, started + 5_000, new AbortController().signal).then(() => Date.now() - started)))
  left.slice(3).forEach((w, i) => t.ok(w >= (i + 1) * 100 - EARLY && w < 3_000, `attempt ${i + 4} left after ${w} ms`))
})

t.test('a Redis that never answers: the process paces alone at the full rate', async (t) => {
  const dead = createRedis({ url: 'redis://127.0.0.1:1' })
  dead.on('error', () => {})
  t.teardown(() => dead.disconnect())
  const { seen, events } = recorder()
  const waits = await burst([pacer(t, { redis: dead, events })], 4) as number[]
  t.equal(seen.redisFailed, 4)
  t.same(seen.fallback, [[true, { replicas: 1, rate: 10 }]])
  t.ok(waits[3]! >= 100 - EARLY, 'still paced')
})

t.test('Redis', { skip: await redisSkip() }, async (t) => {
  async function replica (t: Test, prefix: string, options: Partial<PacerOptions> = {}) {
    const redis = createRedis({ url: redisTestUrl() })
    redis.on('error', () => {})
    t.teardown(() => redis.disconnect())
    await once(redis, 'ready')
    return { redis, pacer: pacer(t, { redis, keyPrefix: prefix, heartbeatMs: 50, ...options }) }
  }

  async function until (what: string, check: () => boolean | Promise<boolean>) {
    for (let i = 0; i < 200 && !(await check()); i++) await sleep(10)
    t.ok(await check(), what)
  }

  t.test('two replicas share one schedule', async (t) => {
    const prefix = redisKeyPrefix(t)
    const a = await replica(t, prefix)
    const b = await replica(t, prefix)
    await until('both replicas announced', () => a.pacer.replicas === 2 && b.pacer.replicas === 2)
    // Each alone would let 3 through at once; together they still only get 3, then one per 100 ms.
    const waits = (await burst([a.pacer, b.pacer], 6) as number[]).sort((x, y) => x - y)
    waits.slice(3).forEach((w, i) => t.ok(w >= (i + 1) * 100 - EARLY && w < 3_000, `slot ${i + 1} after ${w} ms`))

    const probe = new Redis(redisTestUrl())
    t.teardown(() => probe.disconnect())
    await a.pacer.close()
    t.equal(await probe.zcard(`${prefix}pacing:replicas`), 1, 'a closed replica leaves at once')
  })

  t.test('a slowdown is shared: one replica is throttled, all slow down', async (t) => {
    const prefix = redisKeyPrefix(t)
    const a = await replica(t, prefix)
    const b = await replica(t, prefix)
    const probe = new Redis(redisTestUrl())
    t.teardown(() => probe.disconnect())
    a.pacer.onThrottled()
    await until('slowdown written', async () => (await probe.exists(`${prefix}pacing:slowdown`)) === 1)
    t.equal(b.pacer.factor, 1)
    await b.pacer.acquire(Date.now() + 5_000, new AbortController().signal)
    t.equal(b.pacer.factor, 0.5, 'learned with its next token')
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
    t.ok(waits[0]! >= 300 + 200 - EARLY && waits[0]! < 3_000, `first alone after ${waits[0]} ms`)
    t.ok(waits[1]! >= 300 + 400 - EARLY && waits[1]! < 3_000, `second alone after ${waits[1]} ms`)

    await a.redis.connect()
    await burst([a.pacer], 1)
    t.same(seen.fallback.at(-1), [false, { replicas: 2, rate: 10 }], 'shared again once Redis is back')
  })
})
