import t, { type Test } from 'tap'
import { once } from 'node:events'
import { ReplicaRoster } from '../../src/connect/replica-roster.js'
import { createRedis } from '../../src/redis.js'
import { fakeClock } from '../fake-clock.js'
import { redisKeyPrefix, redisSkip, redisTestUrl } from '../redis.js'

async function connected (t: Test) {
  // A busy machine may take longer than the production bound of 250 ms; a beat that times out keeps the old count.
  const redis = createRedis({ url: redisTestUrl(), commandTimeoutMs: 5_000 })
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  await once(redis, 'ready')
  return redis
}

t.test('without Redis answering, a roster counts only itself', async (t) => {
  const dead = createRedis({ url: 'redis://127.0.0.1:1' })
  dead.on('error', () => {})
  t.teardown(() => dead.disconnect())
  const roster = new ReplicaRoster(dead, 'unused', 50, fakeClock().clock)
  await roster.beat()
  t.equal(roster.count, 1)
  roster.saw(0)
  t.equal(roster.count, 1, 'a count below one is no count')
  await roster.close()
})

t.test('replicas in Redis', { skip: await redisSkip() }, async (t) => {
  t.test('each replica counts the live ones; a closed one leaves at once', async (t) => {
    const key = `${redisKeyPrefix(t)}pacing:replicas`
    const time = fakeClock()
    const a = new ReplicaRoster(await connected(t), key, 1_000, time.clock)
    const b = new ReplicaRoster(await connected(t), key, 1_000, time.clock)
    await a.beat()
    await b.beat()
    t.equal(b.count, 2)
    await a.beat()
    t.equal(a.count, 2)
    await b.close()
    await a.beat()
    t.equal(a.count, 1)
    await a.close()
  })

  t.test('a replica that stopped beating drops out three heartbeats after its last', async (t) => {
    const key = `${redisKeyPrefix(t)}pacing:replicas`
    const stopped = fakeClock()
    const live = fakeClock()
    const a = new ReplicaRoster(await connected(t), key, 1_000, stopped.clock)
    const b = new ReplicaRoster(await connected(t), key, 1_000, live.clock)
    t.teardown(async () => { await a.close(); await b.close() })
    await a.beat()
    await live.tick(2_999)
    await b.beat()
    t.equal(b.count, 2, 'within three heartbeats: still counted')
    await live.tick(1)
    await b.beat()
    t.equal(b.count, 1, 'then gone')
  })
})
