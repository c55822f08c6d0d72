/**
 * The Lambda entry through API Gateway HTTP API events (payload 2.0), against the Connect
 * simulator over HTTP: each handler is one execution environment, two of them share state like two
 * concurrent environments of one function.
 */
import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import type { AppDeps } from '../../src/app.js'
import { ConfigError, loadConfig } from '../../src/config.js'
import { lambdaConfig } from '../../src/lambda-handler.js'
import { metricSample, ORIGIN, until } from '../helper.js'
import { DYNALITE_CREDENTIALS, startDynalite } from '../dynalite.js'
import { redisKeyPrefix, redisSkip, redisTestUrl } from '../redis.js'
import { environment, functionEnv, invoke, simulator, start } from './environment.js'
import { chatStartBody, httpApiEvent } from './events.js'

const noRedis = await redisSkip()

type SharedStore = 'dynamodb' | 'redis'

/** The state every environment of one function shares: its DynamoDB table (as deployed), or a Redis. */
async function sharedState (t: Test, store: SharedStore): Promise<{ env: Record<string, string>; deps: AppDeps }> {
  if (store === 'redis') return { env: { REDIS_URL: redisTestUrl(), REDIS_KEY_PREFIX: redisKeyPrefix(t) }, deps: {} }
  const dynamo = await startDynalite(t)
  return {
    env: { STATE_STORE: 'dynamodb', STATE_TABLE: dynamo.tableName, REDIS_KEY_PREFIX: `${randomUUID()}:`, REDIS_COMMAND_TIMEOUT_MS: '2000' },
    deps: { dynamoOverrides: { endpoint: dynamo.endpoint, credentials: DYNALITE_CREDENTIALS } }
  }
}

/** Two execution environments of one function, sharing its state and the simulator. */
async function twoEnvironments (t: Test, store: SharedStore, env: Record<string, string> = {}) {
  const sim = await simulator(t)
  const state = await sharedState(t, store)
  const shared = functionEnv({ ...state.env, ...env })
  return { sim, a: environment(t, sim, shared, state.deps), b: environment(t, sim, shared, state.deps) }
}

t.test('a chat start -> 200 with the participant token and ids only, CORS headers, a text body', async (t) => {
  const sim = await simulator(t)
  const lambda = environment(t, sim, functionEnv())
  const res = await start(lambda, '198.51.100.23')
  t.equal(res.statusCode, 200)
  t.equal(res.isBase64Encoded, false)
  t.equal(res.headers['access-control-allow-origin'], ORIGIN)
  t.match(res.headers['content-type'], /^application\/json/)
  for (const [name, value] of Object.entries(res.headers)) t.type(value, 'string', `${name} is a string, as API Gateway requires`)
  const { data } = res.json()
  t.same(Object.keys(data.startChatResult).sort(), ['ContactId', 'ParticipantId', 'ParticipantToken'])
  t.notMatch(res.body, /\$metadata|InstanceId|ContactFlowId|8f2e4a77/, 'nothing of the SDK or the configuration')
  t.equal(sim.requests.length, 1)
  t.match(sim.requests[0]!.input, { InstanceId: '8f2e4a77-1c3b-4d5e-9f60-7a8b9c0d1e2f', ContactFlowId: '1b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b' })
  t.match(lambda.logs(), /"remoteAddress":"198\.51\.100\.23"/, 'the request log names the source address')
  t.notMatch(lambda.logs(), new RegExp(data.startChatResult.ParticipantToken), 'never the token')
})

t.test('a CORS preflight is answered by the app itself (API Gateway\'s own CORS stays off)', async (t) => {
  const sim = await simulator(t)
  const lambda = environment(t, sim, functionEnv())
  const res = await invoke(lambda, {
    method: 'OPTIONS',
    body: null,
    headers: { 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,idempotency-key' }
  })
  t.equal(res.statusCode, 204)
  t.equal(res.headers['access-control-allow-origin'], ORIGIN)
  t.match(res.headers['access-control-allow-methods'], /POST/)
  t.match(res.headers['access-control-allow-headers'], /idempotency-key/i)
})

t.test('an unlisted origin -> 403, Connect not called', async (t) => {
  const sim = await simulator(t)
  const lambda = environment(t, sim, functionEnv())
  const res = await start(lambda, '198.51.100.23', { headers: { origin: 'https://evil.example.net' } })
  t.equal(res.statusCode, 403)
  t.equal(res.json().code, 'ORIGIN_NOT_ALLOWED')
  t.equal(res.headers['access-control-allow-origin'], undefined)
  t.equal(sim.requests.length, 0)
})

t.test('bodies API Gateway base64-encodes: a JSON chat start, and /chat/end as sendBeacon sends it (text/plain)', async (t) => {
  const sim = await simulator(t)
  const lambda = environment(t, sim, functionEnv())
  const started = await start(lambda, '198.51.100.23', { base64: true })
  t.equal(started.statusCode, 200, 'base64 JSON start')
  const { endToken, startChatResult } = started.json().data
  const beacon = { path: '/chat/end', body: JSON.stringify({ EndToken: endToken }), headers: { 'content-type': 'text/plain;charset=UTF-8' } }
  const ended = await invoke(lambda, { ...beacon, base64: true })
  t.equal(ended.statusCode, 204, 'base64 text/plain end')
  t.equal(ended.body, '')
  t.ok(sim.contacts.get(startChatResult.ContactId)!.endsAt <= Date.now(), 'StopContact reached Connect')
  t.equal((await invoke(lambda, beacon)).statusCode, 204, 'plain text/plain end, again: idempotent')
  const garbled = await invoke(lambda, { sourceIp: '198.51.100.23', body: 'not json at all', base64: true })
  t.equal(garbled.statusCode, 400, 'a body that is not JSON once decoded -> 400')
})

t.test('a forged X-Forwarded-For does not change the client, whatever TRUST_PROXY says', async (t) => {
  const sim = await simulator(t)
  const lambda = environment(t, sim, functionEnv({ TRUST_PROXY: 'true', RATE_LIMIT_MAX: '1' }))
  const first = await start(lambda, '198.51.100.23', { headers: { 'x-forwarded-for': '203.0.113.1' } })
  t.equal(first.statusCode, 200)
  const second = await start(lambda, '198.51.100.23', { headers: { 'x-forwarded-for': '203.0.113.2, 198.51.100.23' } })
  t.equal(second.statusCode, 429, 'the same source address, whatever the header claims, is one client')
  t.equal((await start(lambda, '198.51.100.24', { headers: { 'x-forwarded-for': '203.0.113.1' } })).statusCode, 200, 'another source address is another client')
  t.notMatch(lambda.logs(), /"remoteAddress":"203\.0\.113/, 'the forged address is never the client')
  t.match(lambda.logs(), /TRUST_PROXY is ignored in Lambda/)
})

t.test('STATE_STORE=memory in Lambda is warned about: environments would not share spent tokens', async (t) => {
  const sim = await simulator(t)
  const alone = environment(t, sim, functionEnv())
  t.equal((await start(alone, '198.51.100.23')).statusCode, 200)
  t.match(alone.logs(), /STATE_STORE=memory in Lambda/)
  const state = await sharedState(t, 'dynamodb')
  const shared = environment(t, sim, functionEnv(state.env), state.deps)
  t.equal((await start(shared, '198.51.100.23')).statusCode, 200)
  t.notMatch(shared.logs(), /STATE_STORE=memory/, 'not with a shared store')
})

t.test('a failed start is not kept: the next invocation builds the app again', async (t) => {
  const sim = await simulator(t)
  const env: Record<string, string | undefined> = functionEnv({ ALLOWED_ORIGINS: '' })
  const stderr = process.stderr.write
  const written: string[] = []
  process.stderr.write = ((chunk: string) => { written.push(String(chunk)); return true }) as typeof process.stderr.write
  t.teardown(() => { process.stderr.write = stderr })
  const lambda = environment(t, sim, env)
  await t.rejects(lambda.handler(httpApiEvent()), /ALLOWED_ORIGINS/, 'a configuration error fails the invocation')
  process.stderr.write = stderr
  t.match(written.join(''), /connect-chat-gateway: ALLOWED_ORIGINS: required in production/, 'and is reported once, in a sentence')
  env.ALLOWED_ORIGINS = ORIGIN
  t.equal((await start(lambda, '198.51.100.23')).statusCode, 200, 'fixed, the next invocation starts the app')
})

t.test('CONNECT_SIMULATOR=true without a simulator endpoint is refused: the function has no simulator inside', async (t) => {
  const dev = { NODE_ENV: 'development', CONNECT_SIMULATOR: 'true' }
  t.throws(() => lambdaConfig(loadConfig(dev)), ConfigError)
  t.throws(() => lambdaConfig(loadConfig(dev)), /AWS_ENDPOINT_URL_CONNECT/)
  t.equal(lambdaConfig(loadConfig({ ...dev, AWS_ENDPOINT_URL_CONNECT: 'http://sim.internal:4566' })).CONNECT_SIMULATOR, true, 'a simulator elsewhere is fine')
})

t.test('nothing of the server\'s: no /metrics on the public path, no listener', async (t) => {
  const sim = await simulator(t)
  const lambda = environment(t, sim, functionEnv({ NODE_ENV: 'development' }))
  t.equal((await invoke(lambda, { method: 'GET', path: '/metrics', body: null })).statusCode, 404, '/metrics even in development')
  t.equal((await invoke(lambda, { method: 'GET', path: '/health/ready', body: null })).statusCode, 200)
  const app = await lambda.handler.ready()
  t.equal(app.server.listening, false)
})

t.test('availability is refreshed by the requests that read it, not by a timer', async (t) => {
  const sim = await simulator(t)
  const clock = { now: Date.parse('2026-12-10T10:00:00Z') }
  const lambda = environment(t, sim, functionEnv({ CONNECT_QUEUE_ID: 'simulated-queue', AVAILABILITY_REFRESH: '30 seconds' }), { availabilityNow: () => clock.now })
  await lambda.handler.ready()
  t.equal(sim.availability.calls().currentMetrics, 0, 'no poll at start-up: the environment may sit frozen for hours')
  const get = () => invoke(lambda, { method: 'GET', path: '/chat/availability', body: null })
  const first = await get()
  t.equal(first.statusCode, 200)
  t.not(first.json().reason, 'unknown', 'the first request waits for the first poll')
  t.equal(sim.availability.calls().currentMetrics, 1)
  await get()
  clock.now += 29_000
  await get()
  t.equal(sim.availability.calls().currentMetrics, 1, 'within the refresh, answered from memory')
  clock.now += 1_000
  await get()
  t.equal(sim.availability.calls().currentMetrics, 2, 'a request after it polls again')
})

t.test('a hanging Connect holds an availability request for one attempt\'s deadline at most', async (t) => {
  const sim = await simulator(t)
  const lambda = environment(t, sim, functionEnv({ CONNECT_QUEUE_ID: 'simulated-queue' }))
  const app = await lambda.handler.ready()
  const failedPolls = async () => metricSample(await app.metrics.registry.metrics(), 'ccg_availability_polls_total{result="failed"}')
  sim.availability.setFault({ type: 'hang' })
  const res = await invoke(lambda, { method: 'GET', path: '/chat/availability', body: null })
  t.equal(res.statusCode, 200)
  t.equal(res.json().reason, 'unknown', 'answered without the poll')
  t.equal(await failedPolls(), undefined, 'which was still waiting on Connect (two attempts of CONNECT_ATTEMPT_TIMEOUT_MS)')
  await until('the poll to fail on its own', async () => (await failedPolls()) === 1)
})

for (const store of ['dynamodb', 'redis'] as const) {
  t.test(`shared between environments (${store})`, { skip: store === 'redis' && noRedis }, async (t) => {
    t.test('the rate limit: two environments count one client together', async (t) => {
      const { sim, a, b } = await twoEnvironments(t, store, { RATE_LIMIT_MAX: '2' })
      t.equal((await start(a, '198.51.100.23')).statusCode, 200)
      t.equal((await start(b, '198.51.100.23')).statusCode, 200)
      const refused = await start(a, '198.51.100.23')
      t.equal(refused.statusCode, 429)
      t.equal(refused.json().code, 'RATE_LIMITED')
      t.equal((await start(b, '198.51.100.23')).statusCode, 429, 'on the other environment too')
      t.equal((await start(b, '198.51.100.99')).statusCode, 200, 'another address has its own budget')
      t.equal(sim.requests.length, 3)
    })

    t.test('a resume token spent on one environment is refused on the other', async (t) => {
      const { sim, a, b } = await twoEnvironments(t, store)
      const first = (await start(a, '198.51.100.23')).json().data
      sim.endChat(first.startChatResult.ContactId)
      const resume = chatStartBody({ PersistentChat: { RehydrationType: 'ENTIRE_PAST_SESSION', ResumeToken: first.resumeToken } })
      t.equal((await start(a, '198.51.100.23', { body: resume })).statusCode, 200, 'continued on A')
      const before = sim.requests.length
      const replay = await start(b, '198.51.100.23', { body: resume })
      t.equal(replay.statusCode, 403)
      t.match(replay.json(), { code: 'RESUME_TOKEN_REFUSED', message: /already been used/ })
      t.equal(sim.requests.length, before, 'Connect not called for it')
    })

    t.test('open chats per caller: counted across environments by source address', async (t) => {
      const { sim, a, b } = await twoEnvironments(t, store, { MAX_OPEN_CHATS_PER_CALLER: '2' })
      t.equal((await start(a, '198.51.100.23')).statusCode, 200)
      t.equal((await start(b, '198.51.100.23')).statusCode, 200)
      const before = sim.requests.length
      const refused = await start(a, '198.51.100.23', { headers: { 'x-forwarded-for': '203.0.113.77' } })
      t.equal(refused.statusCode, 429)
      t.equal(refused.json().code, 'TOO_MANY_OPEN_CHATS')
      t.equal(sim.requests.length, before, 'Connect not called')
      t.equal((await start(b, '198.51.100.24')).statusCode, 200, 'another source address is served')
    })
  })
}
