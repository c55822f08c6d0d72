import t from 'tap'
import { Redis } from 'ioredis'
import { createLiveChats } from '../../src/chat/live-chats.js'
import { redisKeyPrefix, redisSkip, redisTestUrl } from '../redis.js'

// DescribeContact's budget, as the ledger hands it out: each chat at most once per window, and a
// few asks a second for the whole deployment; a chat the budget turned away is not held back longer.
for (const store of ['memory', 'redis'] as const) {
  t.test(`${store}: each chat asked at most once per window; past the per-second budget, asked again the next second`, { skip: store === 'redis' ? await redisSkip() : false }, async (t) => {
    let now = 1_700_000_000_000
    let redis: Redis | undefined
    if (store === 'redis') {
      redis = new Redis(redisTestUrl(), { maxRetriesPerRequest: 0 })
      t.teardown(() => redis?.disconnect())
    }
    const chats = createLiveChats({ redis, keyPrefix: store === 'redis' ? redisKeyPrefix(t) : '', now: () => now })
    const a = { instanceId: 'i', contactId: 'a' }
    const b = { instanceId: 'i', contactId: 'b' }
    t.equal(await chats.mayDescribe(a, 30_000, 1), true)
    t.equal(await chats.mayDescribe(a, 30_000, 1), false, 'asked already in this window')
    t.equal(await chats.mayDescribe(b, 30_000, 1), false, 'the second of this second is over the budget')
    now += 1_000
    t.equal(await chats.mayDescribe(b, 30_000, 1), true, 'the next second it may be asked')
    t.equal(await chats.mayDescribe(a, 30_000, 1), false, 'a stays asked until its window ends')
    if (store === 'memory') {
      // In Redis the window is a key's expiry, on Redis's own clock: not something a test moves.
      now += 30_000
      t.equal(await chats.mayDescribe(a, 30_000, 1), true, 'its window over, it may be asked again')
    }
  })
}
