import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { startSimulator } from '@connect-chat-gateway/simulator'
import { build as buildApp, startChat, validBody, type Harness } from '../helper.js'
import { redisKeyPrefix, redisSkip, redisTestUrl } from '../redis.js'
import { CUSTOMER_SECRET, mint, secretBytes } from '../trust/tokens.js'

// Nobody rides someone else's chat: an Idempotency-Key and a resume token bind to their caller.

const noRedis = await redisSkip()
const build: typeof buildApp = (t, env = {}, options) => buildApp(t, { RATE_LIMIT_MAX: '10000', ...env }, options)

const SECRET = 'resume-key-binding-'.padEnd(40, 'r')
const signed = { RESUME_TOKEN_SECRET: SECRET }
const hs = { ...signed, CUSTOMER_JWT_SECRET: CUSTOMER_SECRET }
const bearer = async (sub: string) => ({ authorization: `Bearer ${await mint({ sub }, secretBytes())}` })
const resume = (token: string, type: 'FROM_SEGMENT' | 'ENTIRE_PAST_SESSION' = 'FROM_SEGMENT') =>
  validBody({ PersistentChat: { RehydrationType: type, ResumeToken: token } })

/** A chat start as it arrives from `address` (the app sees it as the client address). */
function startFrom (h: Harness, address: string, body: unknown, headers: Record<string, string> = {}, contentType = 'application/json') {
  return h.app.inject({
    method: 'POST',
    url: '/chat/start',
    remoteAddress: address,
    headers: { 'content-type': contentType, ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body)
  })
}

const chatOf = (res: { json (): unknown }) => (res.json() as { data: { startChatResult: { ContactId: string; ParticipantToken: string } } }).data.startChatResult

t.test('Idempotency-Key shorter than 16 characters -> 400 naming the header; Connect not called', async (t) => {
  const h = await build(t)
  for (const key of ['a', '9b1c2f0e-click-1'.slice(0, 15)]) {
    const res = await startChat(h.app, validBody(), { 'idempotency-key': key })
    t.equal(res.statusCode, 400, key)
    t.match(res.json().details, [{ path: 'Idempotency-Key', message: /16 to 64/ }])
  }
  t.equal(h.sim.requests.length, 0)
  t.equal((await startChat(h.app, validBody(), { 'idempotency-key': randomUUID() })).statusCode, 200, 'a UUID is a good key')
})

t.test('the same key and body from another address starts its own chat; the same caller gets the same chat', async (t) => {
  const h = await build(t)
  const key = { 'idempotency-key': randomUUID() }
  const variants: Array<[string, unknown, string]> = [
    ['json', validBody(), 'application/json'],
    ['text/plain', JSON.stringify(validBody()), 'text/plain'],
    ['padded name', { ParticipantDetails: { DisplayName: '  Ann ' } }, 'application/json'],
    ['ignored fields', validBody({ InstanceId: 'x', ContactFlowId: 'y', Username: 'z' }), 'application/json']
  ]
  const victim = chatOf(await startFrom(h, '198.51.100.1', validBody(), key))
  for (const [name, body, type] of variants) {
    const again = await startFrom(h, '198.51.100.1', body, key, type)
    t.equal(chatOf(again).ContactId, victim.ContactId, `${name}: a retry from the same caller gets the same chat`)
    const attacker = await startFrom(h, '203.0.113.9', body, key, type)
    t.equal(attacker.statusCode, 200)
    t.not(chatOf(attacker).ContactId, victim.ContactId, `${name}: another address gets a chat of its own`)
    t.not(chatOf(attacker).ParticipantToken, victim.ParticipantToken, `${name}: and never the victim's participant token`)
  }
})

t.test('with customer tokens the key binds the subject: alice, bob and an anonymous caller get three chats', async (t) => {
  const h = await build(t, hs)
  const key = randomUUID()
  const alice = chatOf(await startFrom(h, '198.51.100.1', validBody(), { 'idempotency-key': key, ...await bearer('alice') }))
  const aliceAgain = chatOf(await startFrom(h, '198.51.100.7', validBody(), { 'idempotency-key': key, ...await bearer('alice') }))
  t.equal(aliceAgain.ContactId, alice.ContactId, 'alice retrying from another network still gets her chat')
  const bob = chatOf(await startFrom(h, '198.51.100.1', validBody(), { 'idempotency-key': key, ...await bearer('bob') }))
  const anonymous = chatOf(await startFrom(h, '198.51.100.1', validBody(), { 'idempotency-key': key }))
  t.equal(new Set([alice.ContactId, bob.ContactId, anonymous.ContactId]).size, 3)
  t.equal(new Set([alice.ParticipantToken, bob.ParticipantToken, anonymous.ParticipantToken]).size, 3)
})

t.test('a resume token issued to alice opens her chat only with alice\'s customer token', async (t) => {
  const h = await build(t, hs)
  const first = (await startChat(h.app, validBody(), await bearer('alice'))).json().data
  h.sim.endChat(first.startChatResult.ContactId)
  const before = h.sim.requests.length
  for (const [who, headers] of [['bob', await bearer('bob')], ['no customer token', {}]] as const) {
    const res = await startChat(h.app, resume(first.resumeToken), headers)
    t.equal(res.statusCode, 403, who)
    t.equal(res.json().code, 'RESUME_TOKEN_REFUSED', who)
  }
  t.equal(h.sim.requests.length, before, 'Connect was never called for them')
  const own = await startChat(h.app, resume(first.resumeToken), await bearer('alice'))
  t.equal(own.statusCode, 200, 'alice herself continues')
})

t.test('a resume token opens one continued chat; the answer carries a fresh one that works', async (t) => {
  const h = await build(t, signed)
  const first = (await startChat(h.app, validBody())).json().data
  h.sim.endChat(first.startChatResult.ContactId)
  const continued = await startChat(h.app, resume(first.resumeToken))
  t.equal(continued.statusCode, 200)
  const second = continued.json().data
  h.sim.endChat(second.startChatResult.ContactId)
  const before = h.sim.requests.length
  const replay = await startChat(h.app, resume(first.resumeToken, 'ENTIRE_PAST_SESSION'))
  t.equal(replay.statusCode, 403)
  t.match(replay.json(), { code: 'RESUME_TOKEN_REFUSED', message: /already been used/ })
  t.equal(h.sim.requests.length, before, 'a spent token never reaches Connect')
  t.equal((await startChat(h.app, resume(second.resumeToken))).statusCode, 200, 'the fresh token continues the chain')
})

t.test('a failed continuation does not spend the token', async (t) => {
  const h = await build(t, { ...signed, CONNECT_MAX_ATTEMPTS: '1' })
  const first = (await startChat(h.app, validBody())).json().data
  h.sim.endChat(first.startChatResult.ContactId)
  h.sim.script({ type: 'InternalServiceException' })
  t.equal((await startChat(h.app, resume(first.resumeToken))).statusCode, 502, 'Connect failed')
  t.equal((await startChat(h.app, resume(first.resumeToken))).statusCode, 200, 'the customer can try again with the same token')
})

t.test('two replicas sharing Redis: ten concurrent uses of one token reach Connect once; a spent token is refused everywhere', { skip: noRedis }, async (t: Test) => {
  const sim = await startSimulator({ latencyMs: 50 })
  t.teardown(() => sim.close())
  const env = { ...signed, REDIS_URL: redisTestUrl(), REDIS_KEY_PREFIX: redisKeyPrefix(t) }
  const one = await build(t, env, { simulator: sim })
  const two = await build(t, env, { simulator: sim })
  const first = (await startChat(one.app, validBody())).json().data
  sim.endChat(first.startChatResult.ContactId)

  const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => startChat(i % 2 ? two.app : one.app, resume(first.resumeToken))))
  const statuses = answers.map((r) => r.statusCode).sort()
  t.same(statuses, [200, ...Array(9).fill(403)], 'one continued chat, nine refusals')
  t.equal(sim.requests.filter((r) => r.input.PersistentChat !== undefined).length, 1, 'Connect saw one continuation')
  for (const app of [one.app, two.app]) {
    t.equal((await startChat(app, resume(first.resumeToken))).statusCode, 403, 'spent on both replicas afterwards')
  }
})

t.test('without Redis, spent tokens are remembered per replica', async (t) => {
  const h = await build(t, signed)
  const first = (await startChat(h.app, validBody())).json().data
  h.sim.endChat(first.startChatResult.ContactId)
  const answers = await Promise.all(Array.from({ length: 5 }, () => startChat(h.app, resume(first.resumeToken))))
  t.same(answers.map((r) => r.statusCode).sort(), [200, 403, 403, 403, 403])
})

t.test('a token minted for an unverified source is refused where persistent chat is verified', async (t) => {
  const sim = await startSimulator()
  t.teardown(() => sim.close())
  const verified = await build(t, signed, { simulator: sim })
  const unverified = await build(t, { ...signed, PERSISTENT_CHAT: 'unverified' }, { simulator: sim })
  const victim = (await startChat(verified.app, validBody())).json().data
  sim.endChat(victim.startChatResult.ContactId)

  // The attacker names the victim's contact on the unverified replica...
  const ride = await startChat(unverified.app, validBody({ PersistentChat: { RehydrationType: 'ENTIRE_PAST_SESSION', SourceContactId: victim.startChatResult.ContactId } }))
  t.equal(ride.statusCode, 200, 'unverified mode trusts a bare SourceContactId, as documented')
  const laundered = ride.json().data
  sim.endChat(laundered.startChatResult.ContactId)
  // ...and replays the token it got on a verified one.
  const before = sim.requests.length
  const replay = await startChat(verified.app, resume(laundered.resumeToken, 'ENTIRE_PAST_SESSION'))
  t.equal(replay.statusCode, 403)
  t.equal(replay.json().code, 'RESUME_TOKEN_REFUSED')
  t.equal(sim.requests.length, before)

  // A chat the unverified replica started itself is the caller's own: its token is good everywhere.
  const own = (await startChat(unverified.app, validBody())).json().data
  sim.endChat(own.startChatResult.ContactId)
  t.equal((await startChat(verified.app, resume(own.resumeToken))).statusCode, 200)
})
