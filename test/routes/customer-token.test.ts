import t, { type Test } from 'tap'
import { exportSPKI, SignJWT, UnsecuredJWT } from 'jose'
import { trustSettings } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { createTrustPolicy, type TrustPolicyOptions } from '../../src/trust/index.js'
import { build as buildApp, startChat, validBody } from '../helper.js'
import { CUSTOMER_SECRET, mint, secretBytes, signingKey, startJwksServer } from '../trust/tokens.js'

// Many starts from one address per test: the per-client rate limit is not what these tests are about.
const build: typeof buildApp = (t, env = {}, options) => buildApp(t, { RATE_LIMIT_MAX: '10000', ...env }, options)

const hs = { CUSTOMER_JWT_SECRET: CUSTOMER_SECRET }
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

/** The real app with a trust policy whose JWKS timings a test can shorten. */
async function buildWith (t: Test, env: Record<string, string>, options: TrustPolicyOptions) {
  const trust = createTrustPolicy(trustSettings(loadConfig({ NODE_ENV: 'development', CONNECT_SIMULATOR: 'true', ...env })), options)
  return build(t, env, { deps: { trust } })
}

t.test('HS256 token: its attributes become trusted, may use keys outside ALLOWED_ATTRIBUTES and override the browser', async (t) => {
  const { app, sim } = await build(t, hs)
  const token = await mint({ sub: 'cust-42', attributes: { customerId: 'cust-42', tier: 'gold', topic: 'from-backend' } }, secretBytes())
  const res = await startChat(app, validBody({ Attributes: { topic: 'from-browser', language: 'fr' } }), bearer(token))
  t.equal(res.statusCode, 200)
  t.same(sim.requests[0]?.input.Attributes, { topic: 'from-backend', language: 'fr', customerId: 'cust-42', tier: 'gold' })
})

t.test('the browser still may not send keys outside ALLOWED_ATTRIBUTES, token or not', async (t) => {
  const { app, sim } = await build(t, hs)
  const token = await mint({ attributes: { tier: 'gold' } }, secretBytes())
  const res = await startChat(app, validBody({ Attributes: { customerId: 'forged' } }), bearer(token))
  t.equal(res.statusCode, 400)
  t.match(res.json().details, [{ path: 'Attributes.customerId' }])
  t.equal(sim.requests.length, 0)
})

t.test('trusted attributes count toward the 32,768-byte total: over it -> 400; overriding instead of adding -> 200', async (t) => {
  const { app, sim } = await build(t, hs)
  const browser = validBody({ Attributes: { topic: 't'.repeat(15_000) } })
  const over = await startChat(app, browser, bearer(await mint({ attributes: { crm: 'c'.repeat(18_000) } }, secretBytes())))
  t.equal(over.statusCode, 400)
  t.match(over.json(), { code: 'VALIDATION_FAILED', details: [{ path: 'Attributes', message: /32768/ }] })
  t.equal(sim.requests.length, 0)
  const replaced = await startChat(app, browser, bearer(await mint({ attributes: { topic: 'c'.repeat(18_000) } }, secretBytes())))
  t.equal(replaced.statusCode, 200)
})

t.test('the attributes claim follows the browser\'s key rules: otherwise 401 before Connect', async (t) => {
  const { app, sim } = await build(t, hs)
  for (const attributes of [{ 'bad key': 'x' }, { ['k'.repeat(129)]: 'x' }, { n: 1 }, ['x'], 'x', { nested: { a: 'b' } }]) {
    const res = await startChat(app, validBody(), bearer(await mint({ attributes }, secretBytes())))
    t.equal(res.statusCode, 401, JSON.stringify(attributes).slice(0, 40))
  }
  t.equal(sim.requests.length, 0)
})

t.test('refused with 401 CUSTOMER_TOKEN_INVALID before Connect, token never echoed or logged', async (t) => {
  const { app, sim, logs } = await build(t, { ...hs, CUSTOMER_JWT_AUDIENCE: 'chat-gateway', CUSTOMER_JWT_ISSUER: 'https://shop.example.com' })
  const ok = { aud: 'chat-gateway', iss: 'https://shop.example.com', attributes: { tier: 'gold' } }
  const now = Math.floor(Date.now() / 1000)
  const cases: Record<string, string> = {
    'bad signature': await mint(ok, secretBytes('another-secret-that-is-long-enough-000')),
    expired: await mint(ok, secretBytes(), { exp: now - 300 }),
    'no exp': await new SignJWT(ok).setProtectedHeader({ alg: 'HS256' }).sign(secretBytes()),
    'wrong audience': await mint({ ...ok, aud: 'someone-else' }, secretBytes()),
    'wrong issuer': await mint({ ...ok, iss: 'https://evil.example' }, secretBytes()),
    'alg none': new UnsecuredJWT(ok).setExpirationTime('5m').encode(),
    'HS512 with the same secret (alg not pinned)': await mint(ok, secretBytes(), { header: { alg: 'HS512' } }),
    malformed: 'not.a.jwt',
    'a resume token signed with the same secret': await mint(ok, secretBytes(), { header: { typ: 'ccg-resume+jwt' } })
  }
  for (const [name, token] of Object.entries(cases)) {
    const res = await startChat(app, validBody(), bearer(token))
    t.equal(res.statusCode, 401, name)
    t.same(Object.keys(res.json()).sort(), ['code', 'error', 'message', 'statusCode'], name)
    t.equal(res.json().code, 'CUSTOMER_TOKEN_INVALID', name)
    t.notOk(res.body.includes(token), `${name}: not echoed`)
    t.notOk(logs().includes(token), `${name}: not logged`)
  }
  t.match((await startChat(app, validBody(), bearer(cases.expired!))).json().message, /expired/)
  t.match((await startChat(app, validBody(), bearer(cases['wrong audience']!))).json().message, /not issued for this service/)
  t.equal(sim.requests.length, 0, 'Connect was never called')
  t.equal((await startChat(app, validBody(), bearer(await mint(ok, secretBytes())))).statusCode, 200, 'the right token passes')
})

t.test('a small clock tolerance: just expired passes, minutes ago does not', async (t) => {
  const { app } = await build(t, hs)
  const now = Math.floor(Date.now() / 1000)
  t.equal((await startChat(app, validBody(), bearer(await mint({}, secretBytes(), { exp: now - 5 })))).statusCode, 200)
  t.equal((await startChat(app, validBody(), bearer(await mint({}, secretBytes(), { exp: now - 120 })))).statusCode, 401)
})

t.test('no token: anonymous chats pass; REQUIRE_CUSTOMER_TOKEN=true makes it mandatory', async (t) => {
  const open = await build(t, hs)
  t.equal((await startChat(open.app, validBody())).statusCode, 200)
  t.equal((await startChat(open.app, validBody(), { authorization: 'Basic dXNlcjpwYXNz' })).statusCode, 200, 'other schemes are not ours')
  t.equal((await startChat(open.app, validBody(), { authorization: 'Bearer ' })).statusCode, 401, 'an empty Bearer is malformed')

  const strict = await build(t, { ...hs, REQUIRE_CUSTOMER_TOKEN: 'true' })
  for (const headers of [{}, { authorization: 'Basic dXNlcjpwYXNz' }] as Record<string, string>[]) {
    const res = await startChat(strict.app, validBody(), headers)
    t.equal(res.statusCode, 401)
    t.match(res.json(), { code: 'CUSTOMER_TOKEN_INVALID', message: /required/ })
  }
  t.equal(strict.sim.requests.length, 0)
  t.equal((await startChat(strict.app, validBody(), bearer(await mint({}, secretBytes())))).statusCode, 200)
})

t.test('without customer-token verification configured a Bearer header is ignored, not trusted', async (t) => {
  const { app, sim } = await build(t)
  const token = await mint({ attributes: { tier: 'gold' } }, secretBytes())
  for (const authorization of [`Bearer ${token}`, 'Bearer garbage', 'Basic x']) {
    t.equal((await startChat(app, validBody(), { authorization })).statusCode, 200, authorization.slice(0, 12))
  }
  t.notOk(sim.requests.some((r) => r.input.Attributes), 'no attributes reached Connect')
})

t.test('the token\'s sub is logged at debug, never the token', async (t) => {
  const { app, logs } = await build(t, { ...hs, LOG_LEVEL: 'debug' })
  const token = await mint({ sub: 'cust-42', attributes: { tier: 'gold' } }, secretBytes())
  t.equal((await startChat(app, validBody(), bearer(token))).statusCode, 200)
  t.match(logs(), /"customerSub":"cust-42"/)
  t.notOk(logs().includes(token))
  t.notMatch(logs(), /gold/, 'trusted attribute values are not logged')
})

t.test('JWKS: RS256 and ES256 tokens verify against keys fetched from CUSTOMER_JWKS_URL', async (t) => {
  const rs = await signingKey('RS256', 'rs-1')
  const es = await signingKey('ES256', 'es-1')
  const jwks = await startJwksServer(t, [rs.jwk, es.jwk])
  const { app, sim } = await build(t, { CUSTOMER_JWKS_URL: jwks.url, CUSTOMER_JWT_ISSUER: 'https://shop.example.com' })
  for (const key of [rs, es]) {
    const res = await startChat(app, validBody(), bearer(await mint({ iss: 'https://shop.example.com', attributes: { signer: key.kid } }, key)))
    t.equal(res.statusCode, 200, key.alg)
    t.same(sim.requests.at(-1)?.input.Attributes, { signer: key.kid })
  }
  t.equal(jwks.fetches, 1, 'keys are cached')
  const wrongIss = await startChat(app, validBody(), bearer(await mint({ iss: 'https://evil.example' }, rs)))
  t.equal(wrongIss.statusCode, 401)
  const unknown = await signingKey('RS256', 'rs-1') // same kid, different key: an attacker's
  t.equal((await startChat(app, validBody(), bearer(await mint({ iss: 'https://shop.example.com' }, unknown)))).statusCode, 401)
})

t.test('algorithm confusion: HS256 signed with the public RSA key is refused, with and without an HS secret', async (t) => {
  const rs = await signingKey('RS256', 'rs-1')
  const jwks = await startJwksServer(t, [rs.jwk])
  const pem = new TextEncoder().encode(await exportSPKI(rs.publicKey))
  const confused = await mint({ attributes: { tier: 'gold' } }, pem, { header: { kid: 'rs-1' } })
  const legit = await mint({}, rs)
  for (const env of [{ CUSTOMER_JWKS_URL: jwks.url }, { CUSTOMER_JWKS_URL: jwks.url, ...hs }]) {
    const { app, sim } = await build(t, env)
    t.equal((await startChat(app, validBody(), bearer(legit))).statusCode, 200)
    const res = await startChat(app, validBody(), bearer(confused))
    t.equal(res.statusCode, 401, Object.keys(env).join('+'))
    t.equal(sim.requests.length, 1)
  }
  const { app } = await build(t, hs)
  t.equal((await startChat(app, validBody(), bearer(legit))).statusCode, 401, 'an RS256 token without a JWKS configured')
})

t.test('JWKS rotation: a token with a new kid makes the keys be fetched again', async (t) => {
  const first = await signingKey('ES256', 'k1')
  const jwks = await startJwksServer(t, [first.jwk])
  const { app } = await buildWith(t, { CUSTOMER_JWKS_URL: jwks.url }, { jwks: { jwksCooldownMs: 0 } })
  t.equal((await startChat(app, validBody(), bearer(await mint({}, first)))).statusCode, 200)
  const next = await signingKey('ES256', 'k2')
  jwks.keys.push(next.jwk)
  t.equal((await startChat(app, validBody(), bearer(await mint({}, next)))).statusCode, 200)
  t.equal(jwks.fetches, 2)
})

t.test('JWKS endpoint goes down: cached keys keep working, unknown kids fail fast with 401', async (t) => {
  const known = await signingKey('RS256', 'known')
  const jwks = await startJwksServer(t, [known.jwk])
  // A cache that is always stale: every request wants a refetch, the worst case for an outage.
  const { app, logs } = await buildWith(t, { CUSTOMER_JWKS_URL: jwks.url }, { jwks: { jwksCacheMaxAgeMs: 0, jwksCooldownMs: 60_000 } })
  t.equal((await startChat(app, validBody(), bearer(await mint({}, known)))).statusCode, 200)
  await jwks.stop()
  const stranger = await signingKey('RS256', 'stranger')
  for (let i = 0; i < 3; i++) {
    t.equal((await startChat(app, validBody(), bearer(await mint({}, known)))).statusCode, 200, `cached key, request ${i}`)
    const startedAt = Date.now()
    t.equal((await startChat(app, validBody(), bearer(await mint({}, stranger)))).statusCode, 401, `unknown kid, request ${i}`)
    t.ok(Date.now() - startedAt < 1_500, 'answered without waiting on the endpoint')
  }
  t.notMatch(logs(), /eyJ/, 'no token in the log')
})

t.test('JWKS endpoint that hangs: requests are bounded by the fetch timeout, then fail fast', async (t) => {
  const key = await signingKey('ES256', 'k1')
  const jwks = await startJwksServer(t, [key.jwk])
  jwks.mode('hang')
  // The production defaults: 2 s per fetch, 30 s before the endpoint is tried again.
  const { app, logs } = await build(t, { CUSTOMER_JWKS_URL: jwks.url })
  const token = await mint({}, key)
  let startedAt = Date.now()
  const first = await startChat(app, validBody(), bearer(token))
  t.equal(first.statusCode, 401)
  t.ok(Date.now() - startedAt < 6_000, 'bounded by the JWKS fetch timeout')
  t.match(logs(), /CUSTOMER_JWKS_URL could not be read/)
  startedAt = Date.now()
  t.equal((await startChat(app, validBody(), bearer(token))).statusCode, 401)
  t.ok(Date.now() - startedAt < 1_500, 'the dead endpoint is not waited on again')
  t.equal(jwks.fetches, 1)
})

t.test('customer tokens that live too long or claim a future iat -> 401 before Connect (CUSTOMER_JWT_MAX_AGE)', async (t) => {
  const { app, sim } = await build(t, hs)
  const now = Math.floor(Date.now() / 1000)
  const key = secretBytes()
  const sign = (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(key)
  const cases = {
    'exp in the year 3000': await sign({ iat: now, exp: 32_503_680_000 }),
    'exp = 1e308': await sign({ iat: now, exp: 1e308 }),
    'iat an hour in the future': await sign({ iat: now + 3600, exp: now + 3900 }),
    'no iat, exp a day away': await sign({ exp: now + 86_400 }),
    'lifetime 61 minutes': await sign({ iat: now, exp: now + 61 * 60 })
  }
  for (const [name, token] of Object.entries(cases)) {
    const res = await startChat(app, validBody(), bearer(token))
    t.equal(res.statusCode, 401, name)
    t.equal(res.json().code, 'CUSTOMER_TOKEN_INVALID', name)
  }
  t.equal(sim.requests.length, 0)
  t.equal((await startChat(app, validBody(), bearer(await sign({ iat: now, exp: now + 3600 })))).statusCode, 200, 'exactly an hour is fine')
  t.equal((await startChat(app, validBody(), bearer(await sign({ iat: now + 10, exp: now + 300 })))).statusCode, 200, 'a little clock skew is fine')

  const short = await build(t, { ...hs, CUSTOMER_JWT_MAX_AGE: '5 minutes' })
  t.equal((await startChat(short.app, validBody(), bearer(await sign({ iat: now, exp: now + 600 })))).statusCode, 401, 'the limit is configurable')
})

t.test('production without CUSTOMER_JWT_AUDIENCE or CUSTOMER_JWT_ISSUER logs a warning; with either, none', async (t) => {
  const production = { ...hs, NODE_ENV: 'production', RESUME_TOKEN_SECRET: 'r'.repeat(40), ALLOWED_ORIGINS: 'https://shop.example.com' }
  const bare = await build(t, production)
  t.match(bare.logs(), /neither CUSTOMER_JWT_AUDIENCE nor CUSTOMER_JWT_ISSUER is set/)
  const scoped = await build(t, { ...production, CUSTOMER_JWT_AUDIENCE: 'chat-gateway' })
  t.notMatch(scoped.logs(), /CUSTOMER_JWT_AUDIENCE/)
})
