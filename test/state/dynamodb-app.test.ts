import t from 'tap'
import { randomUUID } from 'node:crypto'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { build, metricSample, startChat, validBody, type Harness } from '../helper.js'
import { DYNALITE_CREDENTIALS, startDynalite } from '../dynalite.js'

// STATE_STORE=dynamodb end to end: two apps over one table are two replicas of one deployment.

const SECRET = 'dynamodb-state-resume-key-'.padEnd(40, 'd')

const resume = (token: string) => validBody({ PersistentChat: { RehydrationType: 'FROM_SEGMENT', ResumeToken: token } })

/** A chat started and ended on `h`: its resume token can open one continued chat. */
async function endedChatToken (h: Harness): Promise<string> {
  const res = await startChat(h.app, validBody())
  if (res.statusCode !== 200) throw new Error(`start failed: ${res.body}`)
  const data = res.json().data
  h.sim.endChat(data.startChatResult.ContactId)
  return data.resumeToken as string
}

const dynamoDeps = (endpoint: string) => ({ dynamoOverrides: { endpoint, credentials: DYNALITE_CREDENTIALS } })

t.test('two apps over one table: a resume token spent on one is refused on the other; the rate limit is one for both', async (t) => {
  const dynalite = await startDynalite(t)
  const env = {
    STATE_STORE: 'dynamodb', STATE_TABLE: dynalite.tableName, REDIS_KEY_PREFIX: `ccg-test:${randomUUID()}:`,
    REDIS_COMMAND_TIMEOUT_MS: '2000', RESUME_TOKEN_SECRET: SECRET, RATE_LIMIT_MAX: '5'
  }
  const a = await build(t, env, { deps: dynamoDeps(dynalite.endpoint) })
  const b = await build(t, env, { simulator: a.sim, deps: dynamoDeps(dynalite.endpoint) })
  t.match(a.logs(), /live chats are counted in this process only/, 'a per-replica live-chat ledger is said')

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
