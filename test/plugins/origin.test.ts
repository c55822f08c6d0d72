import { connect } from 'node:net'
import t from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { CustomerTokenInvalid } from '../../src/errors.js'
import { createTrustPolicy, type TrustPolicy } from '../../src/trust/index.js'
import { loadConfig } from '../../src/config.js'
import { trustSettings } from '../../src/app.js'
import { build, listenLocal, ORIGIN, startChat, validBody, type Harness } from '../helper.js'

// ALLOWED_ORIGINS drives CORS and is enforced on the server.

const preflight = (h: Harness, origin: string, requestHeaders = 'content-type,idempotency-key,authorization') => h.app.inject({
  method: 'OPTIONS',
  url: '/chat/start',
  headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': requestHeaders }
})

const varies = (res: LightMyRequestResponse) => String(res.headers.vary ?? '').split(',').map((v) => v.trim().toLowerCase())
const refusedCount = async (h: Harness) => (await h.app.metrics.originRefused.get()).values[0]?.value ?? 0

t.test('preflight from a listed origin -> 204 allowing POST with content-type, idempotency-key, authorization; cached; Vary: Origin', async (t) => {
  const h = await build(t)
  const res = await preflight(h, ORIGIN)
  t.equal(res.statusCode, 204)
  t.equal(res.headers['access-control-allow-origin'], ORIGIN)
  t.equal(res.headers['access-control-allow-methods'], 'POST')
  t.same(String(res.headers['access-control-allow-headers']).split(', ').sort(), ['authorization', 'content-type', 'human-check', 'idempotency-key'])
  t.ok(Number(res.headers['access-control-max-age']) > 0, 'max-age set')
  t.notOk(res.headers['access-control-allow-credentials'], 'no cookies are involved')
  t.ok(varies(res).includes('origin'))
  t.equal(h.sim.requests.length, 0)
})

t.test('preflight from an unlisted origin -> 403 without CORS headers', async (t) => {
  const h = await build(t)
  const res = await preflight(h, 'https://evil.example')
  t.equal(res.statusCode, 403)
  t.equal(res.json().code, 'ORIGIN_NOT_ALLOWED')
  t.notOk(res.headers['access-control-allow-origin'])
  t.notOk(res.headers['access-control-allow-methods'])
  t.ok(varies(res).includes('origin'), 'caches keep answers per origin')
})

t.test('text/plain POST from an unlisted origin -> 403 before the body is read; Connect never called; counted', async (t) => {
  const h = await build(t)
  const post = (payload: string) => h.app.inject({
    method: 'POST', url: '/chat/start', headers: { origin: 'https://evil.example', 'content-type': 'text/plain' }, payload
  })
  const valid = await post(JSON.stringify(validBody()))
  t.equal(valid.statusCode, 403)
  t.same(valid.json(), { statusCode: 403, error: 'Forbidden', code: 'ORIGIN_NOT_ALLOWED', message: 'This origin may not call this service' })
  t.notOk(valid.headers['access-control-allow-origin'])
  // Were the body read, these would be 400 and 413.
  t.equal((await post('{not json')).statusCode, 403)
  t.equal((await post('x'.repeat(64 * 1024))).statusCode, 403)
  t.equal(h.sim.requests.length, 0, 'Connect not called')
  t.equal(await refusedCount(h), 3)
})

t.test('origins that only look like a listed one -> 403', async (t) => {
  const h = await build(t)
  for (const origin of ['http://shop.example.com', 'https://shop.example.com.evil.example', 'https://evil-shop.example.com',
    'https://shop.example.com:8443', 'null', 'https://SHOP.EXAMPLE.COM', '*']) {
    const res = await startChat(h.app, validBody(), { origin })
    t.equal(res.statusCode, 403, origin)
  }
  t.equal(h.sim.requests.length, 0)
})

t.test('no ALLOWED_ORIGINS -> every browser origin is refused, mobile apps still served', async (t) => {
  const h = await build(t, { ALLOWED_ORIGINS: '' })
  t.equal((await startChat(h.app, validBody(), { origin: ORIGIN })).statusCode, 403)
  t.equal((await startChat(h.app, validBody())).statusCode, 200)
})

t.test('several listed origins: each gets its own origin back, never *', async (t) => {
  const other = 'http://localhost:8080'
  const h = await build(t, { ALLOWED_ORIGINS: `${ORIGIN},${other}` })
  for (const origin of [ORIGIN, other]) {
    const res = await startChat(h.app, validBody(), { origin })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['access-control-allow-origin'], origin)
  }
})

t.test('no Origin (mobile app, curl) -> served, without CORS headers', async (t) => {
  const h = await build(t)
  const res = await startChat(h.app, validBody())
  t.equal(res.statusCode, 200)
  t.notOk(res.headers['access-control-allow-origin'])
})

t.test('REQUIRE_ORIGIN=true: a POST without Origin -> 403; a listed Origin -> 200; GETs (probes) are not refused', async (t) => {
  const h = await build(t, { REQUIRE_ORIGIN: 'true' })
  const bare = await startChat(h.app, validBody())
  t.equal(bare.statusCode, 403)
  t.equal(bare.json().code, 'ORIGIN_NOT_ALLOWED')
  t.equal((await startChat(h.app, validBody(), { origin: ORIGIN })).statusCode, 200)
  t.equal((await h.app.inject({ method: 'GET', url: '/no-such-page' })).statusCode, 404)
  t.equal(h.sim.requests.length, 1)
  t.equal(await refusedCount(h), 1)
})

// Amazon's sample answers crashes without CORS headers, and widgets then report "CORS errors".
const throwingTrust = (error: Error): TrustPolicy => ({
  ...createTrustPolicy(trustSettings(loadConfig({ NODE_ENV: 'development', CONNECT_SIMULATOR: 'true' }))),
  async customer (authorization: string | undefined) { if (authorization) throw error; return undefined }
})
const json = (payload: string) => ({ method: 'POST' as const, url: '/chat/start', headers: { 'content-type': 'application/json' }, payload })
const ok = JSON.stringify(validBody())

const everyStatus: Array<{
  status: number
  code: string
  env?: Record<string, string>
  trust?: TrustPolicy
  before?: (h: Harness) => Promise<unknown> | void
  request: { method: 'GET' | 'POST'; url: string; headers: Record<string, string>; payload?: string }
}> = [
  { status: 200, code: '', request: json(ok) },
  { status: 400, code: 'VALIDATION_FAILED', request: json('{}') },
  { status: 400, code: 'INVALID_JSON', request: json('{') },
  { status: 401, code: 'CUSTOMER_TOKEN_INVALID', trust: throwingTrust(new CustomerTokenInvalid('bad token')), request: { ...json(ok), headers: { 'content-type': 'application/json', authorization: 'Bearer x' } } },
  { status: 403, code: 'PERSISTENT_CHAT_DISABLED', env: { PERSISTENT_CHAT: 'off' }, request: json(JSON.stringify(validBody({ PersistentChat: { RehydrationType: 'FROM_SEGMENT', ResumeToken: 'x' } }))) },
  { status: 404, code: 'NOT_FOUND', request: { method: 'GET', url: '/no-such-page', headers: {} } },
  { status: 413, code: 'BODY_TOO_LARGE', request: json(JSON.stringify(validBody({ InitialMessage: { ContentType: 'text/plain', Content: 'x'.repeat(17_000) } }))) },
  { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', request: { ...json(ok), headers: { 'content-type': 'application/xml' } } },
  { status: 429, code: 'RATE_LIMITED', env: { RATE_LIMIT_MAX: '1' }, before: (h) => startChat(h.app, validBody()), request: json(ok) },
  { status: 500, code: 'INTERNAL', trust: throwingTrust(new Error('crash')), request: { ...json(ok), headers: { 'content-type': 'application/json', authorization: 'Bearer x' } } },
  { status: 502, code: 'UPSTREAM_MISCONFIGURED', before: (h) => h.sim.script({ type: 'AccessDeniedException' }), request: json(ok) },
  { status: 503, code: 'CHAT_QUOTA_REACHED', before: (h) => h.sim.script({ type: 'LimitExceededException' }), request: json(ok) },
  { status: 504, code: 'DEADLINE_EXCEEDED', env: { CHAT_START_TIMEOUT_MS: '300' }, before: (h) => h.sim.setFault({ type: 'hang' }), request: json(ok) }
]

for (const row of everyStatus) {
  t.test(`${row.status} ${row.code || 'OK'} to a listed origin carries the CORS headers`, async (t) => {
    const h = await build(t, row.env, { deps: row.trust ? { trust: row.trust } : {} })
    await row.before?.(h)
    const res = await h.app.inject({ ...row.request, headers: { ...row.request.headers, origin: ORIGIN } })
    t.equal(res.statusCode, row.status)
    if (row.code) t.equal(res.json().code, row.code)
    t.equal(res.headers['access-control-allow-origin'], ORIGIN)
    t.match(String(res.headers['access-control-expose-headers']), /retry-after/)
    t.ok(varies(res).includes('origin'))
  })
}

t.test('https://*.example.com: any subdomain, one or more labels, is allowed with its own origin back; the apex only when listed', async (t) => {
  const h = await build(t, { ALLOWED_ORIGINS: 'https://*.example.com' })
  for (const origin of ['https://shop.example.com', 'https://a.b.example.com', 'https://xn--bcher-kva.example.com']) {
    const res = await startChat(h.app, validBody(), { origin })
    t.equal(res.statusCode, 200, origin)
    t.equal(res.headers['access-control-allow-origin'], origin)
    t.equal((await preflight(h, origin)).statusCode, 204, `preflight ${origin}`)
  }
  for (const origin of ['https://example.com', 'http://shop.example.com', 'https://shop.example.com:8443', 'https://shop.example.com.evil.example',
    'https://evilexample.com', 'https://.example.com', 'https://a..example.com', 'https://evil.example/x.example.com', 'https://evil.example?.example.com',
    'https://user@x.example.com', 'https://SHOP.example.com', 'null']) {
    t.equal((await startChat(h.app, validBody(), { origin })).statusCode, 403, origin)
  }
  t.equal(h.sim.requests.length, 3)

  const withApex = await build(t, { ALLOWED_ORIGINS: 'https://*.example.com,https://example.com' })
  t.equal((await startChat(withApex.app, validBody(), { origin: 'https://example.com' })).statusCode, 200, 'the apex, listed on its own')
})

t.test('an origin configured with its default port matches what browsers send (no port)', async (t) => {
  const h = await build(t, { ALLOWED_ORIGINS: `${ORIGIN}:443` })
  const res = await startChat(h.app, validBody(), { origin: ORIGIN })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['access-control-allow-origin'], ORIGIN)
})

t.test('ALLOWED_ORIGINS=none: every browser origin refused, mobile apps served', async (t) => {
  const h = await build(t, { ALLOWED_ORIGINS: 'none' })
  t.equal((await startChat(h.app, validBody(), { origin: ORIGIN })).statusCode, 403)
  t.equal((await startChat(h.app, validBody())).statusCode, 200)
})

const logLines = (h: Harness) => h.logs().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)

t.test('a refused origin is named on its request line at info, for the POST and its preflight; an allowed one is not', async (t) => {
  const h = await build(t)
  await startChat(h.app, validBody(), { origin: 'https://evil.example' })
  await preflight(h, 'https://other.example')
  await startChat(h.app, validBody(), { origin: ORIGIN })
  const refused = logLines(h).filter((l) => l.originRefused !== undefined)
  t.same(refused.map((l) => [l.level, l.origin, l.originRefused, l.statusCode]), [
    [30, 'https://evil.example', 'not in ALLOWED_ORIGINS', 403],
    [30, 'https://other.example', 'not in ALLOWED_ORIGINS', 403]
  ], 'on the request\'s own line')
  t.ok(refused.every((l) => typeof l.reqId === 'string'), 'with the request id')
})

t.test('a hostile Origin is logged printable and bounded: other bytes replaced, a long one cut and its length given', async (t) => {
  const h = await build(t)
  await startChat(h.app, validBody(), { origin: 'https://\u00e9vil.example\tx' })
  await startChat(h.app, validBody(), { origin: `https://${'a'.repeat(10_000)}.example` })
  const [odd, long] = logLines(h).filter((l) => l.originRefused !== undefined).map((l) => String(l.origin))
  t.equal(odd, 'https://?vil.example?x')
  t.ok(long!.length < 340, `cut to ${long!.length} characters`)
  t.ok(long!.startsWith('https://aaaa') && long!.endsWith('… (10016 characters)'))
})

t.test('REQUIRE_ORIGIN: a POST without Origin is logged as such', async (t) => {
  const h = await build(t, { REQUIRE_ORIGIN: 'true' })
  const res = await startChat(h.app, validBody())
  t.equal(res.statusCode, 403)
  t.ok(logLines(h).some((l) => l.originRefused === 'no Origin header, and REQUIRE_ORIGIN=true' && l.origin === undefined))
})

/** Sends a request head with `Expect: 100-continue` on a raw socket; the body only if invited. */
async function expectContinue (port: number, origin: string) {
  const body = JSON.stringify(validBody())
  const socket = connect({ port, host: '127.0.0.1' })
  socket.on('error', () => {})
  let text = ''
  let sentBody = false
  const done = new Promise<void>((resolve) => {
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk
      if (!sentBody && text.startsWith('HTTP/1.1 100')) { sentBody = true; socket.write(body) }
      // The final answer is in once its JSON body is.
      if (/\r\n\r\n\{.*\}$/s.test(text.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, ''))) resolve()
    })
    socket.once('close', () => resolve())
  })
  socket.write(`POST /chat/start HTTP/1.1\r\nHost: gw\r\nOrigin: ${origin}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\n\r\n`)
  await done
  socket.destroy()
  return { text, sentBody }
}

t.test('Expect: 100-continue from an unlisted origin -> 403 without "100 Continue" (the body was invited first); a listed one is invited', async (t) => {
  const h = await build(t)
  const port = await listenLocal(h.app)
  const refused = await expectContinue(port, 'https://evil.example')
  t.match(refused.text, /^HTTP\/1\.1 403 /, 'the refusal is the first thing said')
  t.notMatch(refused.text, /100 Continue/)
  t.notOk(refused.sentBody, 'no body was sent')
  const allowed = await expectContinue(port, ORIGIN)
  t.match(allowed.text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /)
  t.equal(h.sim.requests.length, 1, 'only the listed origin reached Connect')
})
