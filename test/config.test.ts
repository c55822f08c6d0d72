import t from 'tap'
import { ConfigError, loadConfig } from '../src/config.js'

const aws = { AWS_REGION: 'eu-west-2', CONNECT_INSTANCE_ID: 'inst', CONNECT_CONTACT_FLOW_ID: 'flow' }

t.test('documented defaults', async (t) => {
  const c = loadConfig({ CONNECT_SIMULATOR: 'true' })
  t.equal(c.PORT, 3000)
  t.equal(c.HOST, '0.0.0.0')
  t.equal(c.LOG_LEVEL, 'info')
  t.equal(c.RATE_LIMIT_MAX, 10)
  t.equal(c.RATE_LIMIT_WINDOW, '1 minute')
  t.equal(c.CONNECT_MAX_ATTEMPTS, 3)
  t.equal(c.CHAT_START_TIMEOUT_MS, 10_000)
  t.equal(c.FEATURE_MARKDOWN, true)
  t.equal(c.FEATURE_ATTACHMENTS, false)
  t.equal(c.PERSISTENT_CHAT, 'verified')
  t.equal(c.REQUIRE_CUSTOMER_TOKEN, false)
  t.equal(c.REQUIRE_ORIGIN, false)
  t.equal(c.CONNECT_MAX_CONCURRENCY, 50)
  t.equal(c.trustProxy, false)
  t.equal(c.resumeTokenTtlSeconds, 30 * 86_400)
  t.same(c.allowedOrigins, [])
  t.equal(c.CONNECT_RATE_LIMIT, undefined)
})

t.test('values are converted from strings', async (t) => {
  const c = loadConfig({
    ...aws,
    PORT: '8080',
    REQUIRE_ORIGIN: 'true',
    FEATURE_MARKDOWN: 'false',
    ALLOWED_ORIGINS: 'https://a.example.com, https://b.example.com:8443',
    ALLOWED_ATTRIBUTES: 'topic, language,,',
    TRUST_PROXY: '10.0.0.0/8, 192.168.1.1',
    CONNECT_RATE_LIMIT: '2.5',
    RESUME_TOKEN_TTL: '12h'
  })
  t.equal(c.PORT, 8080)
  t.equal(c.REQUIRE_ORIGIN, true)
  t.equal(c.FEATURE_MARKDOWN, false)
  t.same(c.allowedOrigins, ['https://a.example.com', 'https://b.example.com:8443'])
  t.same([...c.allowedAttributes], ['topic', 'language'])
  t.same(c.trustProxy, ['10.0.0.0/8', '192.168.1.1'])
  t.equal(c.CONNECT_RATE_LIMIT, 2.5)
  t.equal(c.connectBurst, 3)
  t.equal(c.resumeTokenTtlSeconds, 43_200)
  t.equal(c.instanceId, 'inst')
  t.equal(c.contactFlowId, 'flow')
})

t.test('TRUST_PROXY true', async (t) => {
  t.equal(loadConfig({ ...aws, TRUST_PROXY: 'true' }).trustProxy, true)
})

const bad: Array<[string, Record<string, string>, RegExp]> = [
  ['instance, flow and region are required against AWS', {}, /AWS_REGION, CONNECT_INSTANCE_ID, CONNECT_CONTACT_FLOW_ID/],
  ['a missing flow is named', { AWS_REGION: 'x', CONNECT_INSTANCE_ID: 'i' }, /CONNECT_CONTACT_FLOW_ID/],
  ['PORT not a number', { ...aws, PORT: 'eighty' }, /PORT/],
  ['PORT out of range', { ...aws, PORT: '70000' }, /PORT/],
  ['boolean not a boolean', { ...aws, REQUIRE_ORIGIN: 'maybe' }, /REQUIRE_ORIGIN/],
  ['unknown log level', { ...aws, LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
  ['CONNECT_MAX_ATTEMPTS 0', { ...aws, CONNECT_MAX_ATTEMPTS: '0' }, /CONNECT_MAX_ATTEMPTS/],
  ['origin with a path', { ...aws, ALLOWED_ORIGINS: 'https://a.example.com/chat' }, /ALLOWED_ORIGINS/],
  ['origin that is not a URL', { ...aws, ALLOWED_ORIGINS: 'a.example.com' }, /ALLOWED_ORIGINS/],
  ['TRUST_PROXY hop count', { ...aws, TRUST_PROXY: '2' }, /TRUST_PROXY.*hop count/],
  ['PERSISTENT_CHAT unknown mode', { ...aws, PERSISTENT_CHAT: 'maybe' }, /PERSISTENT_CHAT/],
  ['short resume secret', { ...aws, RESUME_TOKEN_SECRET: 'short' }, /RESUME_TOKEN_SECRET/],
  ['bad resume TTL', { ...aws, RESUME_TOKEN_TTL: '1 week' }, /RESUME_TOKEN_TTL/],
  ['production without a resume secret', { ...aws, NODE_ENV: 'production' }, /RESUME_TOKEN_SECRET.*production/],
  ['customer token required without a key', { ...aws, REQUIRE_CUSTOMER_TOKEN: 'true' }, /REQUIRE_CUSTOMER_TOKEN/],
  ['short customer secret', { ...aws, CUSTOMER_JWT_SECRET: 'short' }, /CUSTOMER_JWT_SECRET/],
  ['JWKS URL not a URL', { ...aws, CUSTOMER_JWKS_URL: 'nope' }, /CUSTOMER_JWKS_URL/],
  ['burst without a rate', { ...aws, CONNECT_BURST: '5' }, /CONNECT_BURST/],
  ['negative rate', { ...aws, CONNECT_RATE_LIMIT: '-1' }, /CONNECT_RATE_LIMIT/]
]

for (const [name, env, pattern] of bad) {
  t.test(`${name} -> ConfigError naming the variable`, async (t) => {
    t.throws(() => loadConfig(env), ConfigError)
    try { loadConfig(env) } catch (err) { t.match((err as Error).message, pattern) }
  })
}

t.test('production with a resume secret, or with persistent chat off, starts', async (t) => {
  t.ok(loadConfig({ ...aws, NODE_ENV: 'production', RESUME_TOKEN_SECRET: 'k'.repeat(32) }))
  t.ok(loadConfig({ ...aws, NODE_ENV: 'production', PERSISTENT_CHAT: 'off' }))
})

t.test('unknown variables and empty values are ignored', async (t) => {
  const c = loadConfig({ ...aws, SOMETHING_ELSE: 'x', PORT: '' })
  t.equal(c.PORT, 3000)
})
