import t, { type Test } from 'tap'
import { ConfigError, loadConfig, startupSummary } from '../src/config.js'

// Production is the default; the tests of other settings relax it, the ones about production say so.
const dev = { NODE_ENV: 'development' }
const aws = { ...dev, AWS_REGION: 'eu-west-2', CONNECT_INSTANCE_ID: 'inst', CONNECT_CONTACT_FLOW_ID: 'flow' }

t.test('documented defaults', async (t) => {
  const c = loadConfig({ ...dev, CONNECT_SIMULATOR: 'true' })
  t.equal(c.PORT, 3000)
  t.equal(c.HOST, '0.0.0.0')
  t.equal(c.LOG_LEVEL, 'info')
  t.equal(c.RATE_LIMIT_MAX, 10)
  t.equal(c.rateLimitWindowMs, 60_000)
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

t.test('TRUST_PROXY: a list that covers every address, however split, or names nothing, stops the start', async (t) => {
  const everyone = ['0.0.0.0/1,128.0.0.0/1', '::/1,8000::/1', '0.0.0.0/2, 64.0.0.0/2, 128.0.0.0/1', '128.0.0.0/1,0.0.0.0/1,10.0.0.0/8',
    '::ffff:0.0.0.0/97,::ffff:128.0.0.0/97,0.0.0.0/1', '::/0', '0.0.0.0/0', '::ffff:0:0/96',
    // Half the IPv6 space, but the half that holds every IPv4 client as a dual-stack socket reports it (::ffff:a.b.c.d).
    '::/1']
  for (const spelling of everyone) t.match(refusal(t, { ...aws, TRUST_PROXY: spelling }), /TRUST_PROXY: .*(every address|anyone)/, spelling)
  for (const spelling of [' , ', ',', ' ,, ']) t.match(refusal(t, { ...aws, TRUST_PROXY: spelling }), /TRUST_PROXY: .*names no proxy/, JSON.stringify(spelling))
  // Large but not everything: private ranges, both halves of IPv4 but for a gap, half of IPv6 without the mapped IPv4.
  for (const spelling of ['10.0.0.0/8,172.16.0.0/12', '0.0.0.0/1,128.0.0.0/2', '8000::/1', '0.0.0.0/1,fd00::/8']) {
    t.ok(Array.isArray(loadConfig({ ...aws, TRUST_PROXY: spelling }).trustProxy), `${spelling} is accepted`)
  }
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
  ['production without a resume secret', { ...aws, NODE_ENV: 'production', ALLOWED_ORIGINS: 'none' }, /RESUME_TOKEN_SECRET.*production/],
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
  t.ok(loadConfig({ ...aws, NODE_ENV: 'production', ALLOWED_ORIGINS: 'none', RESUME_TOKEN_SECRET: 'k'.repeat(32) }))
  t.ok(loadConfig({ ...aws, NODE_ENV: 'production', ALLOWED_ORIGINS: 'none', PERSISTENT_CHAT: 'off' }))
})

t.test('NODE_ENV unset (or anything but development) is production: its checks, and the admin surface off the public port', async (t) => {
  const { NODE_ENV: _dev, ...unset } = aws
  for (const env of [unset, { ...unset, NODE_ENV: '' }, { ...unset, NODE_ENV: 'test' }, { ...unset, NODE_ENV: 'staging' }] as Array<Record<string, string>>) {
    t.match(refusal(t, env), /RESUME_TOKEN_SECRET: required in production/, `NODE_ENV=${JSON.stringify(env.NODE_ENV)}: refused without a resume key (it got a random one)`)
    const c = loadConfig({ ...env, RESUME_TOKEN_SECRET: 'k'.repeat(32), ALLOWED_ORIGINS: 'none' })
    t.equal(c.production, true)
    t.equal(c.metricsPort, 9464, '/metrics and the OpenAPI document on the admin port (they were on the public one)')
    t.equal(startupSummary(c).mode, 'production')
    t.equal(startupSummary(c).settings.NODE_ENV, 'production', 'the start-up line shows the mode in effect, not the raw value')
    t.notOk('NODE_ENV' in c, 'the config holds the mode once, as production')
  }
  t.equal(loadConfig(aws).production, false, 'NODE_ENV=development relaxes it')
})

t.test('production warns about plain http:// JWKS and redis:// to another host; loopback and TLS are quiet', async (t) => {
  const production = { ...aws, NODE_ENV: 'production', RESUME_TOKEN_SECRET: 'k'.repeat(32), ALLOWED_ORIGINS: 'none' }
  const warned = (env: Record<string, string>) => loadConfig({ ...production, ...env }).warnings
  t.match(warned({ CUSTOMER_JWKS_URL: 'http://idp.example.com/jwks.json' }), [/CUSTOMER_JWKS_URL is plain http:\/\//])
  t.match(warned({ REDIS_URL: 'redis://:password@redis.internal:6379' }), [/REDIS_URL is plain redis:\/\//])
  t.notMatch(JSON.stringify(warned({ REDIS_URL: 'redis://:s3cret-pw@redis.internal:6379' })), 's3cret-pw', 'the URL is not quoted')
  for (const env of [{ CUSTOMER_JWKS_URL: 'https://idp.example.com/jwks.json', REDIS_URL: 'rediss://:p@redis.internal:6379' } as Record<string, string>,
    { CUSTOMER_JWKS_URL: 'http://127.0.0.1:8080/jwks', REDIS_URL: 'redis://localhost:6379' }, { REDIS_URL: 'redis://[::1]:6379' }]) {
    t.same(warned(env), [], JSON.stringify(env))
  }
  t.same(loadConfig({ ...aws, REDIS_URL: 'redis://redis.internal:6379' }).warnings.filter((w) => w.includes('REDIS_URL')), [], 'development says nothing')
})

t.test('unknown variables and empty values are ignored', async (t) => {
  const c = loadConfig({ ...aws, SOMETHING_ELSE: 'x', PORT: '' })
  t.equal(c.PORT, 3000)
})

/** The message of the ConfigError `env` raises, or a failure when it starts. */
function refusal (t: Test, env: Record<string, string>): string {
  try {
    loadConfig(env)
  } catch (err) {
    t.type(err, ConfigError)
    return (err as Error).message
  }
  t.fail(`${JSON.stringify(env)} started`)
  return ''
}

t.test('AWS_REGION: real region names start, across partitions and the newest areas', async (t) => {
  for (const region of ['us-east-1', 'eu-west-2', 'us-gov-west-1', 'cn-north-1', 'cn-northwest-1', 'eu-central-2', 'ap-southeast-5',
    'ap-northeast-3', 'il-central-1', 'mx-central-1', 'ca-west-1', 'af-south-1', 'me-central-1', 'us-iso-east-1', 'us-isob-east-1']) {
    t.equal(loadConfig({ ...aws, AWS_REGION: region }).AWS_REGION, region, region)
  }
})

t.test('AWS_REGION: a display name, underscores, a two-digit number or a misspelt direction stop start-up, naming it', async (t) => {
  for (const region of ['London', 'eu_west_2', 'eu-west-22', 'eu-west-0', 'EU-WEST-2', 'eu-west', 'eu-wst-2', 'europe-west-2', 'eu-west-2a']) {
    t.match(refusal(t, { ...aws, AWS_REGION: region }), /^AWS_REGION: .* is not a region name such as eu-west-2/, region)
  }
  t.match(refusal(t, { ...dev, CONNECT_SIMULATOR: 'true', AWS_REGION: 'London' }), /AWS_REGION/, 'checked with the simulator too')
})

t.test('production without ALLOWED_ORIGINS stops start-up, naming it and the mobile-only choice', async (t) => {
  const production = { ...aws, NODE_ENV: 'production', RESUME_TOKEN_SECRET: 'k'.repeat(32) }
  t.match(refusal(t, production), /^ALLOWED_ORIGINS: required in production.*https:\/\/\*\.example\.com.*none for mobile apps only/)
  t.match(refusal(t, { ...production, ALLOWED_ORIGINS: ' , ' }), /^ALLOWED_ORIGINS: required in production/, 'blank entries do not count')
  const none = loadConfig({ ...production, ALLOWED_ORIGINS: 'none' })
  t.same([none.allowedOrigins, none.allowedOriginWildcards, none.warnings], [[], [], []], 'none: no browser, said on purpose, no warning')
  t.match(refusal(t, { ...production, ALLOWED_ORIGINS: 'none,https://a.example.com' }), /ALLOWED_ORIGINS: none cannot be combined/)
})

t.test('outside production an empty ALLOWED_ORIGINS starts with a warning that browsers get 403', async (t) => {
  t.match(loadConfig(aws).warnings, [/^ALLOWED_ORIGINS is not set: every browser request gets 403/])
  t.same(loadConfig({ ...aws, ALLOWED_ORIGINS: 'https://a.example.com' }).warnings, [])
})

t.test('ALLOWED_ORIGINS: default ports, case and a trailing slash are normalised as browsers send them', async (t) => {
  const c = loadConfig({ ...aws, ALLOWED_ORIGINS: 'https://www.example.com:443, http://local.example.com:80/, HTTPS://Shop.Example.COM, https://b.example.com:8443, https://*.example.org:443' })
  t.same(c.allowedOrigins, ['https://www.example.com', 'http://local.example.com', 'https://shop.example.com', 'https://b.example.com:8443'])
  t.same(c.allowedOriginWildcards, ['https://*.example.org'])
})

t.test('ALLOWED_ORIGINS: https://*.example.com is a subdomain wildcard; the apex is listed on its own', async (t) => {
  const c = loadConfig({ ...aws, ALLOWED_ORIGINS: 'https://*.example.com,https://example.com,http://*.dev.example.net:8080' })
  t.same(c.allowedOrigins, ['https://example.com'])
  t.same(c.allowedOriginWildcards, ['https://*.example.com', 'http://*.dev.example.net:8080'])
})

t.test('ALLOWED_ORIGINS: a bare *, other patterns, paths and catch-all wildcards stop start-up with an example that works', async (t) => {
  for (const entry of ['*', 'https://*', '*.example.com', 'https://www.*.example.com', 'https://*example.com', 'https://*.*.example.com',
    'https://example.*', 'https://a.example.com/chat', 'https://a.example.com?x=1', 'https://user@a.example.com', 'a.example.com', 'capacitor://localhost']) {
    t.match(refusal(t, { ...aws, ALLOWED_ORIGINS: entry }), /^ALLOWED_ORIGINS: .*https:\/\/\*\.example\.com/, entry)
  }
  for (const entry of ['https://*.com', 'https://*.localhost', 'https://*.10.0.0.1']) {
    t.match(refusal(t, { ...aws, ALLOWED_ORIGINS: entry }), /^ALLOWED_ORIGINS: .* would match too much/, entry)
  }
})

t.test('METRICS_PORT: 9464 in production unless set; off the public port only when set outside production', async (t) => {
  const production = { ...aws, NODE_ENV: 'production', RESUME_TOKEN_SECRET: 'k'.repeat(32), ALLOWED_ORIGINS: 'none' }
  t.equal(loadConfig(production).metricsPort, 9464)
  t.equal(loadConfig({ ...production, METRICS_PORT: '9100' }).metricsPort, 9100)
  t.equal(loadConfig(aws).metricsPort, undefined)
  t.equal(loadConfig({ ...aws, METRICS_PORT: '0' }).metricsPort, 0)
})

t.test('METRICS_HOST: loopback unless set, whatever HOST says', async (t) => {
  t.equal(loadConfig({ ...aws, HOST: '0.0.0.0' }).METRICS_HOST, '127.0.0.1')
  t.equal(loadConfig({ ...aws, METRICS_HOST: '0.0.0.0' }).METRICS_HOST, '0.0.0.0')
})

t.test('start-up summary: mode, Connect, region and every setting; secrets only as set or unset', async (t) => {
  const secret = 's'.repeat(40)
  const c = loadConfig({ ...aws, NODE_ENV: 'production', RESUME_TOKEN_SECRET: secret, REDIS_URL: 'redis://:hunter2-password@redis:6379',
    ALLOWED_ORIGINS: 'https://*.example.com,https://example.com:443', ALLOWED_ATTRIBUTES: 'topic' })
  const summary = startupSummary(c)
  t.match(summary, {
    mode: 'production', connect: 'aws', region: 'eu-west-2', metricsPort: 9464,
    allowedOrigins: ['https://example.com', 'https://*.example.com'],
    settings: { RESUME_TOKEN_SECRET: 'set', CUSTOMER_JWT_SECRET: 'unset', REDIS_URL: 'set', ALLOWED_ATTRIBUTES: 'topic', RATE_LIMIT_MAX: 10, CONNECT_INSTANCE_ID: 'inst' }
  })
  const text = JSON.stringify(summary)
  t.notMatch(text, secret)
  t.notMatch(text, 'hunter2')
  t.same(Object.keys(summary.settings).length, Object.keys((await import('../src/config.js')).EnvSchema.properties).length, 'every setting')
  t.match(startupSummary(loadConfig({ ...dev, CONNECT_SIMULATOR: 'true', ALLOWED_ORIGINS: 'none' })), { mode: 'development', connect: 'simulator', allowedOrigins: 'none' })
})

t.test('STATE_STORE: redis when REDIS_URL is set, else memory; each store needs its own setting, named in the error', async (t) => {
  const sim = { ...dev, CONNECT_SIMULATOR: 'true' }
  t.equal(loadConfig(sim).stateStore, 'memory')
  t.equal(loadConfig({ ...sim, REDIS_URL: 'redis://127.0.0.1:6379' }).stateStore, 'redis')
  t.equal(loadConfig({ ...sim, STATE_STORE: 'redis', REDIS_URL: 'redis://127.0.0.1:6379' }).stateStore, 'redis')
  const dynamo = loadConfig({ ...sim, STATE_STORE: 'dynamodb', STATE_TABLE: 'ccg-state', REDIS_URL: 'redis://127.0.0.1:6379' })
  t.equal(dynamo.stateStore, 'dynamodb', 'said outright, STATE_STORE wins over REDIS_URL')
  t.equal(dynamo.STATE_TABLE, 'ccg-state')
  t.equal(dynamo.REDIS_KEY_PREFIX, 'ccg:', 'the key prefix of DynamoDB items too')
  t.throws(() => loadConfig({ ...sim, STATE_STORE: 'redis' }), { name: 'ConfigError', message: /^REDIS_URL: required with STATE_STORE=redis/ })
  t.throws(() => loadConfig({ ...sim, STATE_STORE: 'dynamodb' }), { name: 'ConfigError', message: /^STATE_TABLE: required with STATE_STORE=dynamodb/ })
  t.throws(() => loadConfig({ ...sim, STATE_STORE: 'postgres' }), { name: 'ConfigError', message: /STATE_STORE/ })
  const memory = loadConfig({ ...sim, STATE_STORE: 'memory', REDIS_URL: 'redis://127.0.0.1:6379' })
  t.equal(memory.stateStore, 'memory')
  t.ok(memory.warnings.some((w) => w.startsWith('REDIS_URL is set but STATE_STORE=memory')), 'Redis set aside is said')
  t.match(startupSummary(dynamo).settings, { STATE_STORE: 'dynamodb', STATE_TABLE: 'ccg-state' })
})
