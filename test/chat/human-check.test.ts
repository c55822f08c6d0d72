import t from 'tap'
import { createServer, type Socket } from 'node:net'
import { solveChallenge, type Challenge } from 'altcha-lib'
import { deriveKey } from 'altcha-lib/algorithms/pbkdf2'
import type { App } from '../../src/app.js'
import { SIMULATED_VERIFY_SECRET, startSimulator } from '@connect-chat-gateway/simulator'
import { build, ORIGIN, validBody } from '../helper.js'
import { redisKeyPrefix, redisSkip, redisTestUrl } from '../redis.js'
import { CUSTOMER_SECRET, mint, secretBytes } from '../trust/tokens.js'

// Small enough for a test to solve in milliseconds; the format and the checks are the real ones.
const EASY = { humanCheck: { pow: { cost: 10, counterMin: 1, counterMax: 30 } } }
const POW = { HUMAN_CHECK: 'pow', HUMAN_CHECK_WHEN: 'always', HUMAN_CHECK_SECRET: 'pow-signing-key-0123456789-0123456789', CUSTOMER_JWT_SECRET: CUSTOMER_SECRET }

function startWith (app: App, headers: Record<string, string> = {}, address = '127.0.0.2') {
  return app.inject({
    method: 'POST', url: '/chat/start', remoteAddress: address,
    headers: { 'content-type': 'application/json', origin: ORIGIN, ...headers },
    payload: JSON.stringify(validBody())
  })
}

/** What the ALTCHA widget does: fetch the challenge, solve it, and hand back the base64 payload. */
async function solved (app: App): Promise<string> {
  const res = await app.inject({ url: '/chat/challenge', headers: { origin: ORIGIN } })
  t.equal(res.headers['cache-control'], 'no-store')
  const challenge = res.json() as Challenge
  const solution = await solveChallenge({ challenge, deriveKey })
  return Buffer.from(JSON.stringify({ challenge, solution })).toString('base64')
}

t.test('pow: an anonymous start without a proof gets 403 HUMAN_CHECK_REQUIRED naming the check; Connect is not called', async (t) => {
  const { app, sim } = await build(t, POW, { deps: EASY })
  const res = await startWith(app)
  t.equal(res.statusCode, 403)
  t.match(res.json(), { code: 'HUMAN_CHECK_REQUIRED', humanCheck: 'pow' })
  t.equal((await startWith(app, { 'human-check': 'bm90IGEgcGF5bG9hZA==' })).json().code, 'HUMAN_CHECK_REQUIRED', 'garbage is refused alike')
  t.equal(sim.stats().received, 0)
})

t.test('pow: a solved challenge opens one chat, and only one', async (t) => {
  const { app, sim } = await build(t, POW, { deps: EASY })
  const proof = await solved(app)
  t.equal((await startWith(app, { 'human-check': proof })).statusCode, 200)
  const again = await startWith(app, { 'human-check': proof }, '127.0.0.3')
  t.equal(again.statusCode, 403, 'the same proof from anyone else')
  t.match(again.json().message, /used already/)
  t.equal(sim.stats().received, 1)
})

t.test('pow: a challenge signed with another key, or tampered with, is refused', async (t) => {
  const other = await build(t, { ...POW, HUMAN_CHECK_SECRET: 'another-deployments-key-0123456789-012' }, { deps: EASY })
  const { app, sim } = await build(t, POW, { deps: EASY })
  t.equal((await startWith(app, { 'human-check': await solved(other.app) })).statusCode, 403)
  const payload = JSON.parse(Buffer.from(await solved(app), 'base64').toString()) as { challenge: Challenge }
  payload.challenge.parameters.cost = 1
  t.equal((await startWith(app, { 'human-check': Buffer.from(JSON.stringify(payload)).toString('base64') })).statusCode, 403)
  t.equal(sim.stats().received, 0)
})

t.test('pow: an expired challenge is refused', async (t) => {
  // Issued ten minutes ago by this replica's clock: its five-minute expiry is long past.
  const tenMinutesAgo = Date.now() - 10 * 60_000
  const { app } = await build(t, POW, { deps: { ...EASY, now: () => tenMinutesAgo } })
  const proof = await solved(app)
  const later = await build(t, POW, { deps: EASY })
  const res = await startWith(later.app, { 'human-check': proof })
  t.equal(res.statusCode, 403)
  t.match(res.json().message, /expired/)
})

t.test('verified customers are never asked', async (t) => {
  const { app } = await build(t, POW, { deps: EASY })
  const token = await mint({ sub: 'c-1' }, secretBytes())
  t.equal((await startWith(app, { authorization: `Bearer ${token}` })).statusCode, 200)
})

t.test('HUMAN_CHECK_WHEN=busy asks only once anonymous chats pass half their share', async (t) => {
  const { app } = await build(t, { ...POW, HUMAN_CHECK_WHEN: 'busy', CONNECT_MAX_ACTIVE_CHATS: '10', ANONYMOUS_CHAT_SHARE: '0.4' }, { deps: EASY })
  // Share: 4 anonymous chats; asked once more than 2 are live.
  t.equal((await startWith(app, {}, '127.0.0.2')).statusCode, 200)
  t.equal((await startWith(app, {}, '127.0.0.3')).statusCode, 200)
  t.equal((await startWith(app, {}, '127.0.0.4')).statusCode, 200, 'two live: not busy yet')
  t.equal((await startWith(app, {}, '127.0.0.5')).json().code, 'HUMAN_CHECK_REQUIRED', 'three live: busy')
  t.equal((await startWith(app, { 'human-check': await solved(app) }, '127.0.0.5')).statusCode, 200)
})

t.test('the challenge endpoint is absent when the check is not pow', async (t) => {
  const { app } = await build(t)
  t.equal((await app.inject({ url: '/chat/challenge' })).statusCode, 404)
})

t.test('pow across two replicas: a proof spent on one is refused on the other', { skip: await redisSkip() }, async (t) => {
  const sim = await startSimulator()
  t.teardown(() => sim.close())
  const env = { ...POW, REDIS_URL: redisTestUrl(), REDIS_KEY_PREFIX: redisKeyPrefix(t) }
  const a = await build(t, env, { simulator: sim, deps: EASY })
  const b = await build(t, env, { simulator: sim, deps: EASY })
  const proof = await solved(a.app)
  t.equal((await startWith(a.app, { 'human-check': proof })).statusCode, 200)
  t.equal((await startWith(b.app, { 'human-check': proof }, '127.0.0.3')).statusCode, 403)
  t.equal(sim.stats().received, 1)
})

t.test('pow with Redis configured and down: refused 503 STATE_UNAVAILABLE, never accepted unrecorded', async (t) => {
  const { freePort } = await import('../helper.js')
  const { app, sim } = await build(t, { ...POW, REDIS_URL: `redis://127.0.0.1:${await freePort()}` }, { deps: EASY })
  const res = await startWith(app, { 'human-check': await solved(app) })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'STATE_UNAVAILABLE')
  t.equal(sim.stats().received, 0)
})

t.test('provider tokens (turnstile, hcaptcha, recaptcha) are verified server-side, hostname checked, each used once', async (t) => {
  for (const kind of ['turnstile', 'hcaptcha', 'recaptcha']) {
    const sim = await startSimulator()
    t.teardown(() => sim.close())
    const { app } = await build(t, { HUMAN_CHECK: kind, HUMAN_CHECK_WHEN: 'always', HUMAN_CHECK_SECRET: SIMULATED_VERIFY_SECRET, HUMAN_CHECK_VERIFY_URL: `${sim.url}/__verify/${kind}` }, { simulator: sim })
    t.match((await startWith(app)).json(), { code: 'HUMAN_CHECK_REQUIRED', humanCheck: kind }, `${kind}: asked`)
    t.equal((await startWith(app, { 'human-check': 'pass:shop.example.com:1' })).statusCode, 200, `${kind}: a token solved on this page`)
    t.equal((await startWith(app, { 'human-check': 'pass:shop.example.com:1' })).statusCode, 403, `${kind}: the same token again`)
    t.equal((await startWith(app, { 'human-check': 'pass:evil.example:2' })).statusCode, 403, `${kind}: a token solved on another site`)
    t.equal((await startWith(app, { 'human-check': 'fail:3' })).statusCode, 403, `${kind}: a token the provider refuses`)
    t.equal(sim.stats().received, 1, `${kind}: one chat`)
  }
})

t.test('a provider that does not answer in time: 503 HUMAN_CHECK_UNAVAILABLE (fail closed)', async (t) => {
  const sockets = new Set<Socket>()
  const silent = createServer((socket) => { sockets.add(socket) })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const s of sockets) s.destroy(); silent.close() })
  const { port } = silent.address() as { port: number }
  const { app, sim } = await build(t, { HUMAN_CHECK: 'turnstile', HUMAN_CHECK_WHEN: 'always', HUMAN_CHECK_SECRET: SIMULATED_VERIFY_SECRET, HUMAN_CHECK_VERIFY_URL: `http://127.0.0.1:${port}/siteverify` },
    { deps: { humanCheck: { verifyTimeoutMs: 200 } } })
  const res = await startWith(app, { 'human-check': 'pass:shop.example.com:1' })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'HUMAN_CHECK_UNAVAILABLE')
  t.ok(Number(res.headers['retry-after']) > 0)
  t.equal(sim.stats().received, 0)
})

t.test('a provider check needs its secret', async (t) => {
  const { loadConfig } = await import('../../src/config.js')
  t.throws(() => loadConfig({ NODE_ENV: 'development', CONNECT_SIMULATOR: 'true', HUMAN_CHECK: 'hcaptcha' }), /HUMAN_CHECK_SECRET: required with HUMAN_CHECK=hcaptcha/)
})

t.test('a widget profile asks for its own check: pow on one widget, none on the default one', async (t) => {
  const { mkdtempSync, writeFileSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const file = join(mkdtempSync(join(tmpdir(), 'ccg-hc-')), 'widgets.json')
  writeFileSync(file, JSON.stringify({ widgets: [{ id: 'sales', contactFlowId: 'flow-sales', allowedOrigins: [ORIGIN], humanCheck: { type: 'pow', when: 'always' } }] }))
  const { app, sim } = await build(t, { WIDGETS_FILE: file, RESUME_TOKEN_SECRET: 'resume-and-pow-key-0123456789-0123456789' }, { deps: EASY })
  const post = (url: string, headers: Record<string, string> = {}) => app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json', origin: ORIGIN, ...headers }, payload: JSON.stringify(validBody()) })
  t.equal((await post('/chat/start')).statusCode, 200, 'the default profile asks nothing')
  t.equal((await app.inject({ url: '/chat/challenge' })).statusCode, 404)
  t.match((await post('/chat/start/sales')).json(), { code: 'HUMAN_CHECK_REQUIRED', humanCheck: 'pow' })
  const res = await app.inject({ url: '/chat/challenge/sales' })
  const challenge = res.json() as Challenge
  const proof = Buffer.from(JSON.stringify({ challenge, solution: await solveChallenge({ challenge, deriveKey }) })).toString('base64')
  t.equal((await post('/chat/start/sales', { 'human-check': proof })).statusCode, 200)
  t.equal(sim.stats().received, 2)
})

t.test('a widget\'s provider check needs a secret: secretEnv or HUMAN_CHECK_SECRET', async (t) => {
  const { parseWidgetFile } = await import('../../src/widgets/file.js')
  const widget = (humanCheck: object) => JSON.stringify({ widgets: [{ id: 'w', contactFlowId: 'f', allowedOrigins: [ORIGIN], humanCheck }] })
  t.throws(() => parseWidgetFile(widget({ type: 'turnstile' }), {}), /widgets\[0\]\.humanCheck\.secretEnv: turnstile needs/)
  t.throws(() => parseWidgetFile(widget({ type: 'turnstile', secretEnv: 'W_SECRET' }), {}), /W_SECRET is not set/)
  t.match(parseWidgetFile(widget({ type: 'turnstile', secretEnv: 'W_SECRET' }), { W_SECRET: 's' })[0]?.humanCheck, { kind: 'turnstile', when: 'busy', secret: 's' })
  t.throws(() => parseWidgetFile(widget({ type: 'captcha' }), {}), /humanCheck\.type/)
})
