import t from 'tap'
import { randomUUID } from 'node:crypto'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { StateUnavailable } from '../src/errors.js'
import { createStateGuard, sharedOrUnavailable } from '../src/shared-state.js'
import { build, metricSample, startChat, until, validBody, type Harness } from './helper.js'
import { privateRedis, redisKeyPrefix, redisSkip, redisTestUrl, slowRelay } from './redis.js'
import { DYNALITE_CREDENTIALS, startDynalite } from './dynalite.js'

// A resume token opens one continued chat. With a shared store (Redis, DynamoDB), that promise holds
// only if the store confirms each hold: a replica that decides alone while it is down or slow lets
// the same token through on another replica, or on one started after the outage.

const SECRET = 'shared-state-resume-key-'.padEnd(40, 's')

const resume = (token: string) => validBody({ PersistentChat: { RehydrationType: 'FROM_SEGMENT', ResumeToken: token } })

/** A chat started and ended on `h`: its resume token can open one continued chat. */
async function endedChatToken (h: Harness): Promise<string> {
  const res = await startChat(h.app, validBody())
  if (res.statusCode !== 200) throw new Error(`start failed: ${res.body}`)
  const data = res.json().data
  h.sim.endChat(data.startChatResult.ContactId)
  return data.resumeToken as string
}

/** Retries `send` until Redis answers again (not 503); the first such answer. */
async function firstAnswerNot503 (what: string, send: () => ReturnType<typeof startChat>) {
  let res = await send()
  await until(what, async () => {
    if (res.statusCode !== 503) return true
    res = await send()
    return res.statusCode !== 503
  }, 20_000)
  return res
}

const lines = (h: Harness, text: string) => h.logs().split('\n').filter((l) => l.includes(text))
const refusedCount = async (h: Harness) => metricSample(await h.app.metrics.registry.metrics(), 'ccg_state_unavailable_total{use="resume_tokens"}') ?? 0

t.test('sharedOrUnavailable: the answer when it comes in time; StateUnavailable (503, Retry-After) when the command fails or is late', async (t) => {
  t.equal(await sharedOrUnavailable(async () => 'OK', { timeoutMs: 1_000 }), 'OK')
  const failed = await sharedOrUnavailable(() => Promise.reject(new Error('Connection is closed.')), { timeoutMs: 1_000 }).catch((e: unknown) => e)
  t.ok(failed instanceof StateUnavailable)
  t.match(failed, { statusCode: 503, code: 'STATE_UNAVAILABLE', retryAfterSeconds: 5 })
  t.match((failed as Error).cause, { message: 'Connection is closed.' })
  // A command that never answers: refused at the deadline, and its late failure is nobody's unhandled rejection.
  let rejectLate: (e: Error) => void = () => {}
  const late = await sharedOrUnavailable(() => new Promise((_resolve, reject) => { rejectLate = reject }), { timeoutMs: 5, message: 'try later' }).catch((e: unknown) => e)
  t.match(late, { code: 'STATE_UNAVAILABLE', message: 'try later' })
  rejectLate(new Error('too late'))
})

t.test('createStateGuard: one warning when an outage starts, one info line when it ends, every refusal counted', async (t) => {
  const logged: Array<[string, string]> = []
  const refused: string[] = []
  const guard = createStateGuard({
    timeoutMs: 1_000,
    storeName: 'DynamoDB',
    log: { warn: (_o, msg) => logged.push(['warn', msg]), info: (_o, msg) => logged.push(['info', msg]) },
    onRefused: (use) => refused.push(use)
  })
  const down = () => Promise.reject(new Error('down'))
  t.equal(await guard('resume_tokens', async () => 1), 1)
  for (let i = 0; i < 3; i++) await t.rejects(guard('resume_tokens', down), { code: 'STATE_UNAVAILABLE' })
  t.equal(await guard('resume_tokens', async () => 2), 2)
  await t.rejects(guard('end_tokens', down), { code: 'STATE_UNAVAILABLE' })
  t.same(logged.map(([level]) => level), ['warn', 'info', 'warn'], 'one line as each outage starts and ends, none per request')
  t.ok(logged.every(([, msg]) => msg.startsWith('DynamoDB ')), 'the store is named')
  t.same(refused, ['resume_tokens', 'resume_tokens', 'resume_tokens', 'end_tokens'])
})

t.test('Redis stopped, two replicas: resumes refused 503 STATE_UNAVAILABLE without calling Connect; served again when it is back; a replica started after the outage accepts nothing spent', async (t) => {
  const redis = await privateRedis(t)
  if (redis === undefined) { t.comment('skipped: redis-server is not installed'); return }
  const env = { RESUME_TOKEN_SECRET: SECRET, REDIS_URL: redis.url(), REDIS_KEY_PREFIX: 'ccg-test:', REDIS_COMMAND_TIMEOUT_MS: '1000' }
  const a = await build(t, env)
  const b = await build(t, env, { simulator: a.sim })
  const spentBefore = await endedChatToken(a)
  const usedDuring = await endedChatToken(a)
  t.equal((await startChat(a.app, resume(spentBefore))).statusCode, 200, 'spent on A while Redis is up')

  await redis.stop()
  const calls = a.sim.requests.length
  const onB = await startChat(b.app, resume(spentBefore))
  t.equal(onB.statusCode, 503, 'a token spent on A is not accepted by B while Redis is down (it was 200)')
  t.match(onB.json(), { statusCode: 503, code: 'STATE_UNAVAILABLE' })
  t.equal(onB.headers['retry-after'], '5')
  for (const h of [a, b, a, b]) {
    const res = await startChat(h.app, resume(usedDuring))
    t.equal(res.statusCode, 503)
    t.equal(res.json().code, 'STATE_UNAVAILABLE')
  }
  t.equal(a.sim.requests.length, calls, 'Connect was not called during the outage')
  t.equal((await startChat(b.app, validBody())).statusCode, 200, 'new chats still start: only what depends on shared state is refused')
  t.equal(a.sim.requests.length, calls + 1)
  for (const h of [a, b]) t.equal(lines(h, 'Redis cannot confirm shared state').length, 1, 'the outage is logged once per replica')
  t.equal(lines(b, '"code":"STATE_UNAVAILABLE"').filter((l) => l.includes('"level":40')).length, 0, 'and not once per request')
  t.equal(await refusedCount(a) + await refusedCount(b), 5)

  await redis.start()
  const after = await firstAnswerNot503('B to reach Redis again', () => startChat(b.app, resume(usedDuring)))
  t.equal(after.statusCode, 200, 'a token refused during the outage was not spent: it opens its chat once Redis is back')
  t.equal(lines(b, 'Redis confirms shared state again').length, 1)

  const c = await build(t, env, { simulator: a.sim })
  await until('the new replica to reach Redis', async () => (await startChat(c.app, resume(spentBefore))).statusCode !== 503, 20_000)
  for (const token of [spentBefore, usedDuring]) {
    const res = await startChat(c.app, resume(token))
    t.equal(res.statusCode, 403, 'a replica started after the outage refuses a spent token')
    t.equal(res.json().code, 'RESUME_TOKEN_REFUSED')
  }
  t.equal((await startChat(a.app, resume(usedDuring))).statusCode, 403, 'and so does A')
})

t.test('Redis slower than REDIS_COMMAND_TIMEOUT_MS, two replicas: resumes refused 503 within a bounded time, Connect not called; a late hold does not burn the token', { skip: await redisSkip() }, async (t) => {
  const relay = await slowRelay(t, redisTestUrl())
  const env = { RESUME_TOKEN_SECRET: SECRET, REDIS_URL: relay.url, REDIS_KEY_PREFIX: redisKeyPrefix(t), REDIS_COMMAND_TIMEOUT_MS: '300' }
  const a = await build(t, env)
  const b = await build(t, env, { simulator: a.sim })
  const spent = await endedChatToken(a)
  const fresh = await endedChatToken(a)
  await until('A to spend a token through a healthy relay', async () => (await startChat(a.app, resume(spent))).statusCode !== 503, 20_000)

  relay.slow(1_500)
  const calls = a.sim.requests.length
  for (const [h, token] of [[b, spent], [a, fresh], [b, fresh]] as const) {
    const started = Date.now()
    const res = await startChat(h.app, resume(token))
    t.equal(res.statusCode, 503, 'refused while Redis is slow (a token spent on A was 200 on B)')
    t.equal(res.json().code, 'STATE_UNAVAILABLE')
    t.ok(Date.now() - started < 5_000, 'answered within a bounded time')
  }
  t.equal(a.sim.requests.length, calls, 'Connect was not called')

  relay.slow(0)
  const res = await firstAnswerNot503('the slow answers to drain', () => startChat(b.app, resume(fresh)))
  t.equal(res.statusCode, 200, 'the holds that landed late were taken back: the token still opens its chat')
  t.equal((await startChat(a.app, resume(spent))).statusCode, 403)
})

t.test('with Redis up: a resume Connect refuses lets go of its hold in Redis, so the token works later on another replica, once', { skip: await redisSkip() }, async (t) => {
  const env = { RESUME_TOKEN_SECRET: SECRET, REDIS_URL: redisTestUrl(), REDIS_KEY_PREFIX: redisKeyPrefix(t), REDIS_COMMAND_TIMEOUT_MS: '1000' }
  const a = await build(t, env)
  const b = await build(t, env, { simulator: a.sim })
  const first = (await startChat(a.app, validBody())).json().data
  const early = await startChat(a.app, resume(first.resumeToken))
  t.equal(early.statusCode, 409, 'the chat is still active: Connect refuses')
  a.sim.endChat(first.startChatResult.ContactId)
  t.equal((await startChat(b.app, resume(first.resumeToken))).statusCode, 200, 'the hold was released for every replica')
  t.equal((await startChat(a.app, resume(first.resumeToken))).statusCode, 403, 'and the spend is shared')
})

// STATE_STORE=dynamodb end to end: two apps over one table are two replicas of one deployment.

const dynamoDeps = (endpoint: string) => ({ dynamoOverrides: { endpoint, credentials: DYNALITE_CREDENTIALS } })

t.test('two apps over one table: a resume token spent on one is refused on the other; the rate limit is one for both', async (t) => {
  const dynalite = await startDynalite(t)
  const env = {
    STATE_STORE: 'dynamodb', STATE_TABLE: dynalite.tableName, REDIS_KEY_PREFIX: `ccg-test:${randomUUID()}:`,
    REDIS_COMMAND_TIMEOUT_MS: '2000', RESUME_TOKEN_SECRET: SECRET, RATE_LIMIT_MAX: '5'
  }
  const a = await build(t, env, { deps: dynamoDeps(dynalite.endpoint) })
  const b = await build(t, env, { simulator: a.sim, deps: dynamoDeps(dynalite.endpoint) })

  const token = await endedChatToken(a)
  t.equal((await startChat(a.app, resume(token))).statusCode, 200, 'continued on A')
  const calls = a.sim.requests.length
  const onB = await startChat(b.app, resume(token))
  t.equal(onB.statusCode, 403)
  t.equal(onB.json().code, 'RESUME_TOKEN_REFUSED')
  t.equal(a.sim.requests.length, calls, 'Connect was not called for the refused resume')

  // Five starts per window in all: three were made on A, two more on B, and the sixth is refused on either.
  for (let i = 0; i < 2; i++) t.equal((await startChat(b.app, validBody())).statusCode, 200)
  const sixth = await startChat(b.app, validBody())
  t.equal(sixth.statusCode, 429)
  t.equal(sixth.json().code, 'RATE_LIMITED')
  t.equal((await startChat(a.app, validBody())).statusCode, 429, 'and on A')

  // One live-chat ledger: two chats started on A (the first ended in Connect alone, so still counted
  // until checked) and two on B; each replica alone would count two.
  const live = async (h: typeof a) => metricSample(await h.app.inject({ url: '/metrics' }).then((r) => r.body), 'ccg_live_chats{caller="anonymous"}')
  const onA = await live(a)
  t.equal(onA, 4, 'A counts the chats B started too')
  t.equal(await live(b), onA, 'and B counts the same chats')
})

t.test('a table that never answers: resumes refused 503 STATE_UNAVAILABLE without calling Connect; new chats still start (the rate limit counts per replica)', async (t) => {
  // Accepts connections and never replies, like a partitioned endpoint.
  const sockets = new Set<Socket>()
  const silent = createServer((socket) => { sockets.add(socket); socket.on('error', () => {}) })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); silent.close(() => resolve()) }))
  const endpoint = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`

  const h = await build(t, { STATE_STORE: 'dynamodb', STATE_TABLE: 'ccg-state', REDIS_COMMAND_TIMEOUT_MS: '100', RESUME_TOKEN_SECRET: SECRET },
    { deps: dynamoDeps(endpoint) })
  const token = await endedChatToken(h)
  t.match(h.logs(), /DynamoDB unreachable: the per-client rate limit is counted in this process only/)

  const calls = h.sim.requests.length
  const res = await startChat(h.app, resume(token))
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'STATE_UNAVAILABLE')
  t.equal(res.headers['retry-after'], '5')
  t.equal(h.sim.requests.length, calls, 'Connect was not called')
  t.match(h.logs(), /DynamoDB cannot confirm shared state/)
  t.equal(metricSample(await h.app.metrics.registry.metrics(), 'ccg_state_unavailable_total{use="resume_tokens"}'), 1)
})

t.test('two apps over one table: one polls Connect for availability, the other answers from its poll', async (t) => {
  const dynalite = await startDynalite(t)
  const env = {
    STATE_STORE: 'dynamodb', STATE_TABLE: dynalite.tableName, REDIS_KEY_PREFIX: `ccg-test:${randomUUID()}:`, REDIS_COMMAND_TIMEOUT_MS: '2000',
    RESUME_TOKEN_SECRET: SECRET, CONNECT_QUEUE_ID: 'simulated-queue', AVAILABILITY_REFRESH: '1 hour'
  }
  const a = await build(t, env, { deps: dynamoDeps(dynalite.endpoint) })
  await a.app.availability!.tick()
  const b = await build(t, env, { simulator: a.sim, deps: dynamoDeps(dynalite.endpoint) })
  await b.app.availability!.tick()
  t.same([a.app.availability!.polling, b.app.availability!.polling], [true, false], 'the first holds the lock, the second reads')
  const answers = await Promise.all([a, b].map(async (h) => (await h.app.inject({ method: 'GET', url: '/chat/availability' })).json()))
  t.not(answers[1].reason, 'unknown', 'the reader knows what the poller found')
  t.same(answers[1], answers[0])
})
