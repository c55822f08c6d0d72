import t from 'tap'
import type { App } from '../../src/app.js'
import { startSimulator } from '@connect-chat-gateway/simulator'
import { build, metricSample, ORIGIN, validBody } from '../helper.js'
import { redisKeyPrefix, redisSkip, redisTestUrl } from '../redis.js'
import { CUSTOMER_SECRET, mint, secretBytes } from '../trust/tokens.js'

// The attacks of the quota issue, through the real app, the real SDK and the simulator: one address
// holding many chats, many addresses holding the instance's quota, and chats that never end.

const QUOTA = { MAX_OPEN_CHATS_PER_CALLER: '3', CONNECT_MAX_ACTIVE_CHATS: '100', ANONYMOUS_CHAT_SHARE: '0.8' }

function startFrom (app: App, address: string, body: unknown = validBody(), headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST', url: '/chat/start', remoteAddress: address,
    headers: { 'content-type': 'application/json', origin: ORIGIN, ...headers },
    payload: JSON.stringify(body)
  })
}

const customer = async (sub: string) => ({ authorization: `Bearer ${await mint({ sub }, secretBytes())}` })

t.test('one address holds at most MAX_OPEN_CHATS_PER_CALLER live chats: the next gets 429 TOO_MANY_OPEN_CHATS, Connect not called', async (t) => {
  const { app, sim } = await build(t, QUOTA)
  for (let i = 0; i < 3; i++) t.equal((await startFrom(app, '127.0.0.2')).statusCode, 200)
  const refused = await startFrom(app, '127.0.0.2')
  t.equal(refused.statusCode, 429)
  t.equal(refused.json().code, 'TOO_MANY_OPEN_CHATS')
  t.ok(Number(refused.headers['retry-after']) > 0, 'Retry-After says when to try again')
  t.equal(sim.stats().received, 3, 'the fourth start never reached Connect')
  t.equal(sim.stats().described, 3, 'the caller\'s chats were checked with Connect before refusing')
  t.equal((await startFrom(app, '127.0.0.3')).statusCode, 200, 'another address is not affected')
  const metrics = (await app.inject({ url: '/metrics' })).body
  t.equal(metricSample(metrics, 'ccg_chat_starts_total{outcome="too_many_open_chats"}'), 1)
  t.equal(metricSample(metrics, 'ccg_live_chats{caller="anonymous"}'), 4)
})

t.test('a chat Connect says has ended frees its seat at once: the caller starts again without waiting', async (t) => {
  const { app, sim } = await build(t, QUOTA)
  const first = (await startFrom(app, '127.0.0.2')).json().data.startChatResult.ContactId as string
  for (let i = 0; i < 2; i++) await startFrom(app, '127.0.0.2')
  // The customer closed the tab; the agent (or the flow) ended the chat on Connect's side.
  sim.endChat(first)
  const again = await startFrom(app, '127.0.0.2')
  t.equal(again.statusCode, 200, 'the ended chat no longer counts')
  t.equal(metricSample((await app.inject({ url: '/metrics' })).body, 'ccg_live_chats_freed_total'), 1)
  t.equal((await startFrom(app, '127.0.0.2')).statusCode, 429, 'the three live ones still do')
})

t.test('anonymous callers together hold at most ANONYMOUS_CHAT_SHARE of the quota; verified customers still start chats', async (t) => {
  const { app, sim } = await build(t, { ...QUOTA, CONNECT_MAX_ACTIVE_CHATS: '10', ANONYMOUS_CHAT_SHARE: '0.5', CUSTOMER_JWT_SECRET: CUSTOMER_SECRET })
  // Five bot addresses, one chat each: the anonymous share is full.
  for (let i = 2; i < 7; i++) t.equal((await startFrom(app, `127.0.0.${i}`)).statusCode, 200)
  const bot = await startFrom(app, '127.0.0.9')
  t.equal(bot.statusCode, 503)
  t.equal(bot.json().code, 'CHAT_CAPACITY_RESERVED')
  t.ok(Number(bot.headers['retry-after']) > 0)
  for (let i = 0; i < 5; i++) {
    t.equal((await startFrom(app, '127.0.0.9', validBody(), await customer(`customer-${i}`))).statusCode, 200, `verified customer ${i} gets a chat`)
  }
  const full = await startFrom(app, '127.0.0.9', validBody(), await customer('customer-late'))
  t.equal(full.statusCode, 503, 'the whole quota is taken now')
  t.equal(full.json().code, 'CHAT_QUOTA_REACHED')
  t.equal(sim.stats().received, 10, 'refused starts never reached Connect')
  const metrics = (await app.inject({ url: '/metrics' })).body
  t.equal(metricSample(metrics, 'ccg_live_chats{caller="anonymous"}'), 5)
  t.equal(metricSample(metrics, 'ccg_live_chats{caller="verified"}'), 5)
})

t.test('chat lifetime is the server\'s: larger durations are lowered, and every anonymous chat carries one', async (t) => {
  const { app, sim } = await build(t, { ...QUOTA, CUSTOMER_JWT_SECRET: CUSTOMER_SECRET, MAX_CHAT_DURATION_MINUTES: '600', ANONYMOUS_MAX_CHAT_DURATION_MINUTES: '90' })
  await startFrom(app, '127.0.0.2', validBody({ ChatDurationInMinutes: 10_080 }))
  await startFrom(app, '127.0.0.2', validBody())
  await startFrom(app, '127.0.0.2', validBody({ ChatDurationInMinutes: 60 }))
  await startFrom(app, '127.0.0.3', validBody({ ChatDurationInMinutes: 10_080 }), await customer('c-1'))
  await startFrom(app, '127.0.0.3', validBody(), await customer('c-2'))
  t.same(sim.requests.map((r) => r.input.ChatDurationInMinutes), [90, 90, 60, 600, 600],
    'anonymous: lowered to 90 and sent without asking; verified: lowered to 600, never Connect\'s 25-hour default')
})

t.test('a seat lasts until the chat\'s duration has passed, at the latest', async (t) => {
  let now = Date.now()
  const sim = await startSimulator()
  t.teardown(() => sim.close())
  const { app } = await build(t, { ...QUOTA, MAX_OPEN_CHATS_PER_CALLER: '1' }, { simulator: sim, deps: { now: () => now } })
  t.equal((await startFrom(app, '127.0.0.2')).statusCode, 200)
  t.equal((await startFrom(app, '127.0.0.2')).statusCode, 429, 'Connect says the chat is still live')
  now += 179 * 60_000
  t.equal((await startFrom(app, '127.0.0.2')).statusCode, 429, 'a minute before the anonymous cap of 180 minutes')
  now += 60_000
  t.equal((await startFrom(app, '127.0.0.2')).statusCode, 200, 'its duration passed: the seat is free')
})

t.test('DescribeContact is asked about each held chat at most once per 30 s, however often the caller retries', async (t) => {
  const { app, sim } = await build(t, { ...QUOTA, MAX_OPEN_CHATS_PER_CALLER: '2' })
  for (let i = 0; i < 2; i++) await startFrom(app, '127.0.0.2')
  for (let i = 0; i < 20; i++) t.equal((await startFrom(app, '127.0.0.2')).statusCode, 429)
  t.equal(sim.stats().described, 2, 'two chats held, two questions')
})

t.test('two replicas share the counts through Redis', { skip: await redisSkip() }, async (t) => {
  const sim = await startSimulator()
  t.teardown(() => sim.close())
  const env = { ...QUOTA, REDIS_URL: redisTestUrl(), REDIS_KEY_PREFIX: redisKeyPrefix(t), CONNECT_MAX_ACTIVE_CHATS: '10', ANONYMOUS_CHAT_SHARE: '0.5', CUSTOMER_JWT_SECRET: CUSTOMER_SECRET }
  const a = await build(t, env, { simulator: sim })
  const b = await build(t, env, { simulator: sim })
  const replicas = [a.app, b.app]
  const statuses = []
  // One address alternating between replicas: three chats in all, not three per replica.
  for (let i = 0; i < 4; i++) statuses.push((await startFrom(replicas[i % 2]!, '127.0.0.2')).statusCode)
  t.same(statuses, [200, 200, 200, 429])
  for (let i = 3; i < 5; i++) t.equal((await startFrom(replicas[i % 2]!, `127.0.0.${i}`)).statusCode, 200)
  const bot = await startFrom(b.app, '127.0.0.20')
  t.equal(bot.json().code, 'CHAT_CAPACITY_RESERVED', 'five anonymous chats across two replicas fill the share of 5')
  t.equal((await startFrom(a.app, '127.0.0.20', validBody(), await customer('c-1'))).statusCode, 200)
  t.equal(sim.stats().received, 6)
})

t.test('two replicas racing for the last seats: exactly the share is taken, never one more', { skip: await redisSkip() }, async (t) => {
  const sim = await startSimulator({ latencyMs: 50 })
  t.teardown(() => sim.close())
  const env = { ...QUOTA, REDIS_URL: redisTestUrl(), REDIS_KEY_PREFIX: redisKeyPrefix(t), CONNECT_MAX_ACTIVE_CHATS: '10', ANONYMOUS_CHAT_SHARE: '0.5' }
  const a = await build(t, env, { simulator: sim })
  const b = await build(t, env, { simulator: sim })
  // Twenty addresses at once, alternating replicas, while every seat is still pending.
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => startFrom(i % 2 === 0 ? a.app : b.app, `127.0.2.${i + 2}`)))
  t.equal(answers.filter((r) => r.statusCode === 200).length, 5, 'the anonymous share, 5')
  t.ok(answers.filter((r) => r.statusCode !== 200).every((r) => r.json().code === 'CHAT_CAPACITY_RESERVED'))
  t.equal(sim.stats().received, 5, 'Connect was called for those five only')
})

t.test('with Redis configured and down, each replica counts alone: the per-caller limit still holds, the outage is logged once', async (t) => {
  const { freePort } = await import('../helper.js')
  const port = await freePort()
  const { app, sim, logs } = await build(t, { ...QUOTA, REDIS_URL: `redis://127.0.0.1:${port}` })
  for (let i = 0; i < 3; i++) t.equal((await startFrom(app, '127.0.0.2')).statusCode, 200)
  const refused = await startFrom(app, '127.0.0.2')
  t.equal(refused.json().code, 'TOO_MANY_OPEN_CHATS', 'counted in this replica')
  t.equal(sim.stats().received, 3)
  t.equal(logs().split('\n').filter((l) => l.includes('counted by each replica alone')).length, 1, 'logged once per outage')
})
