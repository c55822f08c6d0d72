import t from 'tap'
import { randomUUID } from 'node:crypto'
import { createStateStore, type StateStoreOptions } from '../../src/state/store.js'
import { DYNALITE_CREDENTIALS, startDynalite } from '../dynalite.js'
import { fakeClock } from '../fake-clock.js'
import { redisKeyPrefix, redisSkip, redisTestUrl } from '../redis.js'
import { eventually, movedTime, stateContract, type Backend } from './contract.js'

// One contract, three stores: whatever STATE_STORE says, the same promises hold.

/** Replicas over one key space; each closed at teardown. */
function replicas (t: Parameters<Backend['open']>[0], options: Omit<StateStoreOptions, 'timeoutMs'>, extra: Parameters<typeof createStateStore>[1] = {}) {
  return async () => {
    const store = createStateStore({ timeoutMs: 2_000, ...options }, extra)
    t.teardown(() => store.close())
    await store.ready()
    return store
  }
}

t.test('memory', async (t) => {
  stateContract(t, {
    kind: 'memory',
    async open () {
      const time = fakeClock()
      // One process, one store: its replicas are itself.
      const store = createStateStore({ kind: 'memory', keyPrefix: '', timeoutMs: 2_000 }, { now: time.clock.now, clock: time.clock })
      return { replica: async () => store, after: movedTime(async (ms) => { await time.tick(ms) }) }
    }
  })
})

t.test('redis', { skip: await redisSkip() }, async (t) => {
  stateContract(t, {
    kind: 'redis',
    async open (t) {
      return { replica: replicas(t, { kind: 'redis', keyPrefix: redisKeyPrefix(t), redisUrl: redisTestUrl() }), after: eventually }
    }
  })
})

t.test('dynamodb', async (t) => {
  const dynalite = await startDynalite(t)
  stateContract(t, {
    kind: 'dynamodb',
    async open (t) {
      const time = fakeClock()
      const replica = replicas(t, { kind: 'dynamodb', keyPrefix: `ccg-test:${randomUUID()}:`, tableName: dynalite.tableName }, {
        now: time.clock.now,
        clock: time.clock,
        dynamoOverrides: { endpoint: dynalite.endpoint, credentials: DYNALITE_CREDENTIALS, region: 'us-east-1' }
      })
      return { replica, after: movedTime(async (ms) => { await time.tick(ms) }) }
    }
  })
})
