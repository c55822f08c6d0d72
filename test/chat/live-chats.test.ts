import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { callerId, createLiveChats, SeatBook, type Caller, type LiveChat, type LiveChats, type TakeResult } from '../../src/chat/live-chats.js'
import { createDynamoLiveChats, encodeSeats } from '../../src/chat/live-chats-dynamodb.js'
import { startDynalite } from '../dynalite.js'
import { redisKeyPrefix, redisSkip, redisTestUrl } from '../redis.js'

// Every case runs on each store: this process's memory, Redis, and DynamoDB (dynalite). Time is the
// ledger's `now`, moved by the test.
const redisSkipped = await redisSkip()
const dynalite = await startDynalite(t)
const STORES = ['memory', 'redis', 'dynamodb'] as const
type Store = typeof STORES[number]

/** `count` ledgers over the same shared state (in memory there is only ever one). */
function ledgers (t: Test, store: Store, clock: { now: number }, count = 1): LiveChats[] {
  const now = () => clock.now
  if (store === 'memory') return [createLiveChats({ now })]
  if (store === 'redis') {
    const keyPrefix = redisKeyPrefix(t)
    return Array.from({ length: count }, () => {
      const redis = new Redis(redisTestUrl(), { maxRetriesPerRequest: 0 })
      t.teardown(() => redis.disconnect())
      return createLiveChats({ redis, keyPrefix, now })
    })
  }
  const table = dynalite.table(t)
  return Array.from({ length: count }, () => createDynamoLiveChats({ table: { ...table }, now }))
}

const storeTest = (name: string, run: (t: Test, store: Store) => Promise<void>, stores: readonly Store[] = STORES) => {
  for (const store of stores) t.test(`${store}: ${name}`, { skip: store === 'redis' ? redisSkipped : false }, (t) => run(t, store))
}

const LIMITS = { perCaller: 2, anonymous: 3, total: 4 }
const anon = (key: string): Caller => ({ key, anonymous: true })
const verified = (key: string): Caller => ({ key, anonymous: false })
const chat = (id: string): LiveChat => ({ instanceId: 'instance-1', contactId: id })
const seatOf = (r: TakeResult) => { if (!r.ok) throw new Error(`refused: ${r.limit}`); return r.seat }

storeTest('the three limits: per caller, the anonymous share, the total; a refusal names its limit and the oldest held chats', async (t, store) => {
  const clock = { now: 1_700_000_000_000 }
  const [chats] = ledgers(t, store, clock) as [LiveChats]
  const until = clock.now + 60_000
  for (const [i, id] of ['a1', 'a2'].entries()) {
    const seat = seatOf(await chats.take(anon('10.0.0.1'), LIMITS, until))
    await chats.confirm(seat, anon('10.0.0.1'), chat(id), until + i)
  }
  t.same(await chats.take(anon('10.0.0.1'), LIMITS, until), { ok: false, limit: 'caller', held: [chat('a1'), chat('a2')] })
  await chats.confirm(seatOf(await chats.take(anon('10.0.0.2'), LIMITS, until)), anon('10.0.0.2'), chat('b1'), until + 5)
  const refused = await chats.take(anon('10.0.0.3'), LIMITS, until)
  t.same(refused, { ok: false, limit: 'anonymous', held: [chat('a1'), chat('a2'), chat('b1')] }, 'three anonymous chats fill the share')
  const pending = seatOf(await chats.take(verified('customer-1'), LIMITS, until))
  t.same(await chats.take(verified('customer-2'), LIMITS, until), { ok: false, limit: 'total', held: [chat('a1'), chat('a2'), chat('b1')] },
    'a pending seat counts, but is never handed back to be checked with Connect')
  t.same(await chats.counts(), { anonymous: 3, verified: 1 })
  await chats.release(pending, verified('customer-1'))
  t.same(await chats.counts(), { anonymous: 3, verified: 0 }, 'a released seat is free')
  t.ok((await chats.take(verified('customer-2'), LIMITS, until)).ok)
})

storeTest('an ended chat frees its seat, for its caller and in all; ending it again changes nothing', async (t, store) => {
  const clock = { now: 1_700_000_000_000 }
  const [chats] = ledgers(t, store, clock) as [LiveChats]
  const until = clock.now + 60_000
  const caller = verified('customer "one"')
  for (const id of ['c1', 'c2']) await chats.confirm(seatOf(await chats.take(caller, LIMITS, until)), caller, chat(id), until)
  t.equal((await chats.take(caller, LIMITS, until)).ok, false)
  await chats.end(chat('c1'))
  await chats.end(chat('c1'))
  t.same(await chats.counts(), { anonymous: 0, verified: 1 })
  t.ok((await chats.take(caller, LIMITS, until)).ok, 'the caller may start another')
})

storeTest('seats count until their time: a pending start\'s bound, a chat\'s duration', async (t, store) => {
  const clock = { now: 1_700_000_000_000 }
  const [chats] = ledgers(t, store, clock) as [LiveChats]
  const caller = anon('10.0.0.9')
  seatOf(await chats.take(caller, LIMITS, clock.now + 10_000)) // a start that never came back
  await chats.confirm(seatOf(await chats.take(caller, LIMITS, clock.now + 10_000)), caller, chat('d1'), clock.now + 180 * 60_000)
  t.equal((await chats.take(caller, LIMITS, clock.now + 10_000)).ok, false)
  clock.now += 10_000
  t.same(await chats.counts(), { anonymous: 1, verified: 0 }, 'the pending seat\'s bound passed')
  const seat = seatOf(await chats.take(caller, LIMITS, clock.now + 10_000))
  await chats.release(seat, caller)
  clock.now += 180 * 60_000
  t.same(await chats.counts(), { anonymous: 0, verified: 0 }, 'the chat\'s duration passed')
})

// DescribeContact's budget, as the ledger hands it out: each chat at most once per window, and a
// few asks a second for the whole deployment; a chat the budget turned away is not held back longer.
storeTest('each chat asked at most once per window; past the per-second budget, asked again the next second', async (t, store) => {
  const clock = { now: 1_700_000_000_000 }
  const [chats] = ledgers(t, store, clock) as [LiveChats]
  const a = chat('a')
  const b = chat('b')
  t.equal(await chats.mayDescribe(a, 30_000, 1), true)
  t.equal(await chats.mayDescribe(a, 30_000, 1), false, 'asked already in this window')
  t.equal(await chats.mayDescribe(b, 30_000, 1), false, 'the second of this second is over the budget')
  clock.now += 1_000
  t.equal(await chats.mayDescribe(b, 30_000, 1), true, 'the next second it may be asked')
  t.equal(await chats.mayDescribe(a, 30_000, 1), false, 'a stays asked until its window ends')
  if (store !== 'redis') {
    // In Redis the window is a key's expiry, on Redis's own clock: not something a test moves.
    clock.now += 30_000
    t.equal(await chats.mayDescribe(a, 30_000, 1), true, 'its window over, it may be asked again')
  }
})

storeTest('two replicas racing for the last seats: exactly the limit is taken, never one more', async (t, store) => {
  const clock = { now: 1_700_000_000_000 }
  const [a, b] = ledgers(t, store, clock, 2) as [LiveChats, LiveChats]
  const limits = { perCaller: 3, anonymous: 5, total: 8 }
  // Twenty anonymous addresses at once, alternating replicas: the share of 5 is the limit.
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).take(anon(`10.0.1.${i}`), limits, clock.now + 10_000)))
  t.equal(results.filter((r) => r.ok).length, 5, 'the anonymous share, 5')
  t.ok(results.every((r) => r.ok || r.limit === 'anonymous'))
  // And verified customers race for the three seats left of the total.
  const customers = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? b : a).take(verified(`c-${i}`), limits, clock.now + 10_000)))
  t.equal(customers.filter((r) => r.ok).length, 3, 'the rest of the total, 3')
  t.same(await a.counts(), { anonymous: 5, verified: 3 })
  t.same(await b.counts(), { anonymous: 5, verified: 3 }, 'both replicas see the same ledger')
}, ['redis', 'dynamodb'])

t.test('dynamodb: a burst with seats free, 24 replicas at once: each start gets its seat, the conflicts retried', async (t) => {
  const clock = { now: 1_700_000_000_000 }
  const replicas = ledgers(t, 'dynamodb', clock, 24)
  const results = await Promise.all(replicas.map((chats, i) => chats.take(verified(`c-${i}`), { perCaller: 3, anonymous: 100, total: 100 }, clock.now + 10_000)))
  t.ok(results.every((r) => r.ok), 'nobody refused, nobody gave up')
  t.same(await replicas[0]!.counts(), { anonymous: 0, verified: 24 })
})

t.test('dynamodb: the ledger item at 5,000 live chats stays well under DynamoDB\'s 400 KB', async (t) => {
  const book = new SeatBook()
  const instanceId = randomUUID()
  const until = Date.now() + 180 * 60_000
  for (let i = 0; i < 5_000; i++) {
    book.add(`${instanceId} ${randomUUID()}`, { caller: callerId(anon(`198.51.${i >> 8}.${i & 255}`)), anonymous: i % 5 !== 0, until: until + i * 997 })
  }
  const bytes = encodeSeats(book).length
  t.comment(`5,000 seats: ${bytes} bytes (${(bytes / 5_000).toFixed(1)} per seat)`)
  t.ok(bytes < 280_000, `${bytes} bytes`)
})
