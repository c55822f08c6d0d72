import t, { type Test } from 'tap'
import { once } from 'node:events'
import { SharedSchedule } from '../../src/connect/shared-schedule.js'
import { createRedis } from '../../src/redis.js'
import { redisKeyPrefix, redisSkip, redisTestUrl } from '../redis.js'

// The schedule keeps Redis's own time, so a wait is known only up to the time between two calls:
// slots here are a second apart, and each wait is checked within half of that.
async function schedule (t: Test) {
  const redis = createRedis({ url: redisTestUrl() })
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  await once(redis, 'ready')
  const prefix = redisKeyPrefix(t)
  return { redis, prefix, shared: new SharedSchedule(redis, prefix) }
}

const about = (t: Test, ms: number, expected: number, what: string) => t.ok(ms > expected - 500 && ms <= expected, `${what}: ${ms} ms`)

t.test('the shared schedule in Redis', { skip: await redisSkip() }, async (t) => {
  t.test('one slot per interval after the burst; a slot past the longest wait is refused and takes nothing', async (t) => {
    const { shared } = await schedule(t)
    const first = await shared.reserve(1_000, 1, 5_000)
    t.match(first, { slot: { granted: true, waitMs: 0, intervalMs: 1_000 }, replicas: 0, record: null })
    about(t, first.horizonMs, 1_000, 'handed out up to')
    about(t, (await shared.reserve(1_000, 1, 5_000)).slot.waitMs, 1_000, 'the next slot')
    const refused = await shared.reserve(1_000, 1, 1_500)
    t.equal(refused.slot.granted, false)
    about(t, refused.slot.waitMs, 2_000, 'refused, and told when its slot would have come')
    about(t, (await shared.reserve(1_000, 1, 5_000)).slot.waitMs, 2_000, 'the refused one took no slot')
  })

  t.test('slots given back at the end of the schedule come free; one in the middle waits for those after it', async (t) => {
    const { shared } = await schedule(t)
    await shared.reserve(1_000, 1, 5_000)
    const second = (await shared.reserve(1_000, 1, 5_000)).slot
    const third = (await shared.reserve(1_000, 1, 5_000)).slot
    t.equal(await shared.release([second]), 0, 'a hole in the middle')
    t.equal(await shared.release([third]), 2, 'the last one, and the hole before it')
    about(t, (await shared.reserve(1_000, 1, 5_000)).slot.waitMs, 1_000, 'the second slot is free again')
  })

  t.test('a throttle lowers the deployment\'s rate to the calls accepted over the window, once, and publishes it', async (t) => {
    const { redis, shared } = await schedule(t)
    const listener = redis.duplicate()
    listener.on('error', () => {})
    t.teardown(() => listener.disconnect())
    await once(listener, 'ready')
    await listener.subscribe(shared.keys.channel)
    const heard = once(listener, 'message')
    for (let i = 0; i < 6; i++) await shared.accepted(`replica:${i}`, 1_000)
    const args = { current: 10, floor: 1.25, windowMs: 1_000, debounceMs: 60_000, since: 1, ttlMs: 60_000 }
    const learned = await shared.learn(args, 'replica-a')
    t.equal(learned.changed, true)
    t.equal(learned.measured, 6)
    t.match(learned.record, /^6\.000000:1:\d+\.\d{3}:1\.666\d*:replica-a$/, 'rate:since:at:k:learner')
    t.same((await heard)[1], learned.record, 'every replica hears it')
    const again = await shared.learn({ ...args, current: 6 }, 'replica-b')
    t.same(again, { changed: false, record: learned.record, measured: 0 }, 'inside the debounce: the record in force')
  })
})
