import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'
import { isIP } from 'node:net'
import { addressNumber } from './client-address.js'
import { parseClaimAttributes, parseSegmentAttributes } from './contact-fields.js'
import { ConfigError, parseDurationMs, parseOrigins } from './settings.js'

export { ConfigError }

// Every setting the service reads, with the names and defaults operators rely on (docs: README, Configuration).
// Values arrive as strings; TypeBox converts them ('true' -> true, '25' -> 25) before checking.
const Bool = (def: boolean, description: string) => Type.Boolean({ default: def, description })
const Int = (def: number, minimum: number, maximum: number, description: string) =>
  Type.Integer({ default: def, minimum, maximum, description })
const OptionalString = (description: string, options: { minLength?: number; maxLength?: number; pattern?: string } = {}) =>
  Type.Optional(Type.String({ minLength: 1, ...options, description }))

export const EnvSchema = Type.Object({
  NODE_ENV: Type.String({ default: 'production', description: 'production unless development (npm run dev sets it), which relaxes the production checks' }),
  PORT: Int(3000, 0, 65535, 'port of the public HTTP server'),
  HOST: Type.String({ default: '0.0.0.0', minLength: 1, description: 'address to listen on' }),
  LOG_LEVEL: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info', description: 'pino log level' }),
  AWS_REGION: OptionalString('region of the Amazon Connect instance (required unless CONNECT_SIMULATOR=true)'),
  CONNECT_INSTANCE_ID: OptionalString('Amazon Connect instance id (required unless CONNECT_SIMULATOR=true)', { maxLength: 100 }),
  CONNECT_CONTACT_FLOW_ID: OptionalString('contact flow id for chats (required unless CONNECT_SIMULATOR=true)', { maxLength: 500 }),
  CONNECT_SIMULATOR: Bool(false, 'simulated Connect: fixed credentials, sent to AWS_ENDPOINT_URL_CONNECT (a simulator run on its own; npm run dev starts one)'),
  // The SDK reads these two itself; the service looks at them only to know whether a simulator runs elsewhere.
  AWS_ENDPOINT_URL_CONNECT: OptionalString('where StartChatContact is sent instead of AWS (a simulator container, a staging endpoint)'),
  AWS_ENDPOINT_URL: OptionalString('the same for every AWS service'),
  CONNECT_MAX_ATTEMPTS: Int(3, 1, 10, 'attempts per StartChatContact, first one included'),
  CHAT_START_TIMEOUT_MS: Int(10_000, 100, 120_000, 'overall deadline for one chat start, retries and waits included'),
  CONNECT_ATTEMPT_TIMEOUT_MS: Int(3_000, 100, 60_000, 'deadline for one HTTP attempt to Connect'),
  CONNECT_MAX_CONCURRENCY: Int(50, 1, 10_000, 'per-process cap on concurrent StartChatContact calls; past it 503'),
  CONNECT_RATE_LIMIT: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 10_000, description: 'StartChatContact calls per second for the whole deployment (off when unset)' })),
  CONNECT_BURST: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'burst allowed above CONNECT_RATE_LIMIT (default: the rate, at least 1)' })),
  ALLOWED_ORIGINS: Type.String({ default: '', description: 'comma-separated origins allowed to call from a browser (https://*.example.com for any subdomain; none for no browser); required in production' }),
  REQUIRE_ORIGIN: Bool(false, 'refuse requests without an Origin header (no mobile apps or curl)'),
  ALLOWED_ATTRIBUTES: Type.String({ default: '', description: 'comma-separated contact attribute keys a browser may send' }),
  RATE_LIMIT_MAX: Int(10, 1, 1_000_000, 'chat starts per client IP per window'),
  RATE_LIMIT_WINDOW: Type.String({ default: '1 minute', minLength: 1, description: 'rate-limit window: milliseconds or a duration such as "1 minute"' }),
  STATE_STORE: Type.Optional(Type.Enum(['memory', 'redis', 'dynamodb'], { description: 'where state shared by replicas lives (rate limits, pacing, spent tokens, live chats, availability): memory (this process), redis (REDIS_URL) or dynamodb (STATE_TABLE); redis when REDIS_URL is set, else memory' })),
  REDIS_URL: OptionalString('Redis shared by all replicas (rate limits, pacing, spent resume tokens); in memory when unset'),
  STATE_TABLE: OptionalString('the DynamoDB table of shared state with STATE_STORE=dynamodb (string key pk, TTL on ttl)', { maxLength: 255 }),
  REDIS_COMMAND_TIMEOUT_MS: Int(250, 10, 10_000, 'longest wait for one Redis or DynamoDB answer; past it rate limits and pacing count per replica, and resume tokens are refused (503)'),
  REDIS_KEY_PREFIX: Type.String({ default: 'ccg:', description: 'prefix of every shared-state key this service writes (Redis keys, DynamoDB items)' }),
  TRUST_PROXY: Type.String({ default: 'false', description: 'false, true, or comma-separated addresses/CIDRs of trusted proxies' }),
  REQUEST_TIMEOUT_MS: Int(10_000, 1_000, 120_000, 'time a client has to send headers and body; slower connections are closed'),
  MAX_CONNECTIONS_PER_CLIENT: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000, description: 'open connections one client address may hold (default 50; off behind TRUST_PROXY unless set; 0 = off)' })),
  FEATURE_MARKDOWN: Bool(true, 'featurePermissions.MESSAGING_MARKDOWN sent to the widget'),
  FEATURE_ATTACHMENTS: Bool(false, 'featurePermissions.ATTACHMENTS sent to the widget'),
  PERSISTENT_CHAT: Type.Enum(['verified', 'unverified', 'off'], {
    default: 'verified', description: 'verified: resume only with a resume token we issued; unverified: trust SourceContactId; off: refuse'
  }),
  RESUME_TOKEN_SECRET: OptionalString('comma-separated signing keys for resume tokens (first signs, all verify)'),
  RESUME_TOKEN_TTL: Type.String({ default: '30d', pattern: '^[0-9]+(s|m|h|d)?$', description: 'resume token lifetime: seconds, or with s/m/h/d' }),
  CUSTOMER_JWT_SECRET: OptionalString('HS256 secret for customer tokens'),
  CUSTOMER_JWKS_URL: OptionalString('JWKS URL for RS256/ES256 customer tokens'),
  CUSTOMER_JWT_AUDIENCE: OptionalString('required aud of customer tokens'),
  CUSTOMER_JWT_ISSUER: OptionalString('required iss of customer tokens'),
  REQUIRE_CUSTOMER_TOKEN: Bool(false, 'refuse chat starts without a customer token'),
  CUSTOMER_JWT_MAX_AGE: Type.String({ default: '1 hour', minLength: 1, description: 'longest lifetime (exp - iat) a customer token may have' }),
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, description: 'serve /metrics (and in production the OpenAPI document) on this port only; 9464 in production' })),
  METRICS_HOST: Type.String({ default: '127.0.0.1', minLength: 1, description: 'address METRICS_PORT listens on (loopback by default; 0.0.0.0 for a scraper outside the container)' }),
  SHUTDOWN_GRACE_MS: Int(15_000, 100, 600_000, 'time in-flight starts get to finish on SIGTERM'),
  CONNECT_QUEUE_ID: OptionalString('queue whose hours and agents GET /chat/availability reports (off when unset)', { maxLength: 100 }),
  AVAILABILITY_REFRESH: Type.String({ default: '15 seconds', minLength: 1, description: 'how often one replica asks Connect for hours and agents: seconds or a duration such as "30 seconds"' }),
  REFUSE_WHEN_CLOSED: Bool(false, 'answer /chat/start 503 CHAT_CLOSED while the queue is closed, without calling Connect (needs CONNECT_QUEUE_ID)'),
  WIDGETS_FILE: OptionalString('JSON file of widget profiles served at /chat/start/:widget (re-read on SIGHUP); the environment describes the default profile'),
  MAX_OPEN_CHATS_PER_CALLER: Int(3, 1, 1_000_000, 'live chats one caller (verified subject, else client address) may hold; past it 429 TOO_MANY_OPEN_CHATS'),
  CONNECT_MAX_ACTIVE_CHATS: Int(100, 1, 1_000_000, 'the instance\'s concurrent active chat quota (Connect\'s default is 100); the gateway keeps its live chats under it'),
  ANONYMOUS_CHAT_SHARE: Type.Number({ default: 0.8, minimum: 0, maximum: 1, description: 'share of CONNECT_MAX_ACTIVE_CHATS anonymous callers may hold together; the rest is kept for verified customers' }),
  MAX_CHAT_DURATION_MINUTES: Int(1500, 60, 10_080, 'longest chat the gateway opens; a larger ChatDurationInMinutes is lowered to it'),
  ANONYMOUS_MAX_CHAT_DURATION_MINUTES: Int(180, 60, 10_080, 'longest chat an anonymous caller gets; every anonymous chat is sent with a duration within it'),
  HUMAN_CHECK: Type.Enum(['off', 'pow', 'turnstile', 'hcaptcha', 'recaptcha'], { default: 'off', description: 'human check asked of anonymous callers: off, pow (self-hosted ALTCHA), turnstile, hcaptcha or recaptcha' }),
  HUMAN_CHECK_WHEN: Type.Enum(['always', 'busy'], { default: 'busy', description: 'always, or busy: only while anonymous live chats are above half their share' }),
  HUMAN_CHECK_SECRET: OptionalString('the provider\'s secret key (turnstile, hcaptcha, recaptcha); for pow, the challenge signing key (else RESUME_TOKEN_SECRET\'s first key)'),
  HUMAN_CHECK_VERIFY_URL: OptionalString('where provider tokens are verified instead of the provider\'s own address (a proxy, or the simulator)'),
  // The default profile's StartChatContact fields that only the operator sets (a widget profile has the same).
  SEGMENT_ATTRIBUTES: OptionalString('segment attributes of every chat, as JSON in Connect\'s shape, e.g. {"connect:Subtype":{"ValueString":"connect:Guide"}}', { maxLength: 8192 }),
  DISCONNECT_ON_CUSTOMER_EXIT: Type.Optional(Type.Enum(['AGENT'], { description: 'AGENT: the agent is disconnected when the customer leaves, so post-chat surveys and disconnect flows run' })),
  RESPONSE_MODE: Type.Optional(Type.Enum(['COMPLETE', 'INCREMENTAL'], { description: 'ParticipantConfiguration.ResponseMode: INCREMENTAL streams AI-agent replies; a client may still ask for COMPLETE' })),
  CLAIM_ATTRIBUTES: OptionalString('verified customer token claims copied to contact attributes: claim:attribute pairs, comma-separated (tier:customerTier)', { maxLength: 4096 }),
  CUSTOMER_ID_CLAIM: Type.String({ default: 'sub', minLength: 1, maxLength: 128, description: 'the verified customer token claim sent as CustomerId' }),
  RELATED_CHATS: Bool(false, 'hand out data.relatedToken with each chat, so a later start can continue from it as a related contact (RelatedContactToken)')
})

export type Env = Static<typeof EnvSchema>

/** Below this the availability poller's calls would crowd Connect's per-account API rates. */
export const MIN_AVAILABILITY_REFRESH_MS = 5_000

const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean)

/** One TRUST_PROXY entry: an address or CIDR, never a catch-all that would believe anyone's header. */
function trustedProxy (entry: string): string {
  const [address = '', prefix, extra] = entry.split('/')
  const family = isIP(address)
  const max = family === 4 ? 32 : 128
  const bits = prefix === undefined ? max : /^\d{1,3}$/.test(prefix) ? Number(prefix) : NaN
  if (family === 0 || extra !== undefined || !(bits >= 0 && bits <= max)) {
    throw new ConfigError(`TRUST_PROXY: "${entry.slice(0, 60)}" is not an address or CIDR (use true, or e.g. 10.0.0.0/16,127.0.0.1)`)
  }
  if (bits === 0) throw new ConfigError(`TRUST_PROXY: "${entry}" would believe X-Forwarded-For from anyone; name the balancer's addresses`)
  return entry
}

const IPV4_MAPPED = 0xffffn << 32n

/** The inclusive numeric range of one entry; IPv6 ranges that reach into ::ffff:0:0/96 also count as IPv4. */
function ranges (entry: string): Array<{ family: 4 | 6; lo: bigint; hi: bigint }> {
  const [address = '', prefix] = entry.split('/')
  const start = addressNumber(address)!
  const width = start.family === 4 ? 32n : 128n
  const host = width - BigInt(prefix ?? width)
  const lo = (start.value >> host) << host
  const hi = lo + (1n << host) - 1n
  const out = [{ family: start.family, lo, hi }]
  // A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d: a range there trusts them too.
  if (start.family === 6 && hi >= IPV4_MAPPED && lo <= IPV4_MAPPED + 0xffffffffn) {
    out.push({ family: 4, lo: (lo > IPV4_MAPPED ? lo : IPV4_MAPPED) - IPV4_MAPPED, hi: (hi < IPV4_MAPPED + 0xffffffffn ? hi : IPV4_MAPPED + 0xffffffffn) - IPV4_MAPPED })
  }
  return out
}

/** Whether the entries together cover every IPv4 or every IPv6 address, however split (0.0.0.0/1 + 128.0.0.0/1). */
function coversEverything (entries: string[]): boolean {
  const all = entries.flatMap(ranges)
  return ([[4, 0xffffffffn], [6, (1n << 128n) - 1n]] as const).some(([family, max]) => {
    let next = 0n
    for (const r of all.filter((x) => x.family === family).sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0))) {
      if (r.lo > next) return false
      if (r.hi + 1n > next) next = r.hi + 1n
    }
    return next > max
  })
}

function parseTrustProxy (raw: string): boolean | string[] {
  const v = raw.trim().toLowerCase()
  if (v === 'false' || v === '') return false
  if (v === 'true') return true
  // A hop count lets any client spoof X-Forwarded-For by adding entries, so it is refused.
  if (/^\d+$/.test(v)) throw new ConfigError('TRUST_PROXY: a hop count is not accepted; use true or a list of proxy addresses/CIDRs')
  const entries = list(raw).map(trustedProxy)
  // An empty list would trust no proxy yet turn the per-client connection cap off: nobody meant that.
  if (entries.length === 0) throw new ConfigError(`TRUST_PROXY: "${raw.slice(0, 60)}" names no proxy; use false, true or the balancers' addresses/CIDRs`)
  if (coversEverything(entries)) {
    throw new ConfigError(`TRUST_PROXY: "${raw.slice(0, 100)}" covers every address and would believe X-Forwarded-For from anyone; name the balancer's addresses`)
  }
  return entries
}

/**
 * A region name as AWS spells them: a two-letter area, an optional partition (gov, iso*), one of
 * the compass words, and one digit (us-east-1, us-gov-west-1, cn-north-1, ap-southeast-5). The
 * compass words and the single digit are what catch typos (eu-wst-2, eu-west-22); the area stays
 * open, since AWS adds new ones (il, mx) more often than anything else.
 */
const REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-(north|south|east|west|central|northeast|northwest|southeast|southwest)-[1-9]$/

function checkRegion (region: string): void {
  if (!REGION.test(region)) {
    throw new ConfigError(`AWS_REGION: "${region.slice(0, 60)}" is not a region name such as eu-west-2 or us-east-1 (the code, not the display name)`)
  }
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i

/**
 * Settings that send something in the clear past this host: keys anyone on the path could swap
 * (an http:// JWKS) or a Redis whose spent tokens and counters anyone on the path could rewrite.
 * Allowed (a sidecar, a private link), but said at start-up.
 */
function plaintextWarnings (env: Env): string[] {
  const warnings: string[] = []
  const remote = (raw: string | undefined, scheme: string) => {
    if (raw === undefined) return false
    try {
      const url = new URL(raw)
      return url.protocol === scheme && !LOOPBACK.test(url.hostname)
    } catch { return false }
  }
  if (remote(env.CUSTOMER_JWKS_URL, 'http:')) {
    warnings.push('CUSTOMER_JWKS_URL is plain http:// to another host: whoever is on the path can swap the keys customer tokens are checked with; use https://')
  }
  if (remote(env.REDIS_URL, 'redis:')) {
    warnings.push('REDIS_URL is plain redis:// to another host: its password, counters and spent resume tokens travel unencrypted; use rediss:// (TLS)')
  }
  return warnings
}

/** Reads and checks the environment once; throws ConfigError naming the first bad setting(s). */
export function loadConfig (source: Record<string, string | undefined> = process.env) {
  const known = Object.keys(EnvSchema.properties)
  const picked: Record<string, unknown> = {}
  for (const key of known) {
    const v = source[key]
    if (v !== undefined && v !== '') picked[key] = v
  }
  const converted = Value.Convert(EnvSchema, Value.Default(EnvSchema, picked))
  const errors = [...Value.Errors(EnvSchema, converted)]
  if (errors.length > 0) {
    const seen = new Set<string>()
    const lines = errors
      .map((e) => `${e.instancePath.slice(1) || 'environment'}: ${e.message}`)
      .filter((l) => !seen.has(l) && seen.add(l))
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`)
  }
  const env = converted as Env

  if (!env.CONNECT_SIMULATOR) {
    const missing = (['AWS_REGION', 'CONNECT_INSTANCE_ID', 'CONNECT_CONTACT_FLOW_ID'] as const).filter((k) => !env[k])
    if (missing.length > 0) {
      throw new ConfigError(`missing configuration: ${missing.join(', ')} (required unless CONNECT_SIMULATOR=true)`)
    }
  }
  if (env.AWS_REGION !== undefined) checkRegion(env.AWS_REGION)
  // Production behaviour unless asked otherwise: a forgotten NODE_ENV must not open the admin surface.
  const production = env.NODE_ENV !== 'development'
  const origins = parseOrigins(list(env.ALLOWED_ORIGINS))
  const warnings: string[] = []
  if (!origins.none && origins.exact.length === 0 && origins.wildcards.length === 0) {
    warnings.push('ALLOWED_ORIGINS is not set: every browser request gets 403 (set it to the sites that embed the widget, or to none)')
  }
  if (env.CONNECT_BURST !== undefined && env.CONNECT_RATE_LIMIT === undefined) {
    throw new ConfigError('CONNECT_BURST: only meaningful with CONNECT_RATE_LIMIT')
  }
  const resumeSecrets = list(env.RESUME_TOKEN_SECRET ?? '')
  if (resumeSecrets.some((s) => s.length < 32)) {
    throw new ConfigError('RESUME_TOKEN_SECRET: each key must be at least 32 characters')
  }
  if (env.CUSTOMER_JWT_SECRET !== undefined && env.CUSTOMER_JWT_SECRET.length < 32) {
    throw new ConfigError('CUSTOMER_JWT_SECRET: must be at least 32 characters')
  }
  if (production && env.PERSISTENT_CHAT === 'verified' && resumeSecrets.length === 0) {
    throw new ConfigError('RESUME_TOKEN_SECRET: required in production while PERSISTENT_CHAT=verified (tokens must survive restarts and work across replicas)')
  }
  if (production && list(env.ALLOWED_ORIGINS).length === 0) {
    throw new ConfigError('ALLOWED_ORIGINS: required in production: the sites that embed the chat widget (https://www.example.com,https://*.example.com), or none for mobile apps only')
  }
  if (env.REQUIRE_CUSTOMER_TOKEN && !env.CUSTOMER_JWT_SECRET && !env.CUSTOMER_JWKS_URL) {
    throw new ConfigError('REQUIRE_CUSTOMER_TOKEN: needs CUSTOMER_JWT_SECRET or CUSTOMER_JWKS_URL')
  }
  if (env.REFUSE_WHEN_CLOSED && env.CONNECT_QUEUE_ID === undefined) {
    throw new ConfigError('REFUSE_WHEN_CLOSED: needs CONNECT_QUEUE_ID, the queue whose hours decide')
  }
  const availabilityRefreshMs = parseDurationMs('AVAILABILITY_REFRESH', env.AVAILABILITY_REFRESH, 's', '15, "30 seconds" or "1 minute"')
  if (availabilityRefreshMs < MIN_AVAILABILITY_REFRESH_MS) {
    throw new ConfigError(`AVAILABILITY_REFRESH: at least ${MIN_AVAILABILITY_REFRESH_MS / 1000} seconds, so the calls stay well inside Connect's API rates`)
  }
  if (env.CUSTOMER_JWKS_URL !== undefined) {
    try { new URL(env.CUSTOMER_JWKS_URL) } catch { throw new ConfigError('CUSTOMER_JWKS_URL: not a URL') }
  }
  if (env.HUMAN_CHECK !== 'off' && env.HUMAN_CHECK !== 'pow' && env.HUMAN_CHECK_SECRET === undefined) {
    throw new ConfigError(`HUMAN_CHECK_SECRET: required with HUMAN_CHECK=${env.HUMAN_CHECK} (the provider's secret key)`)
  }
  if (env.HUMAN_CHECK_VERIFY_URL !== undefined && !URL.canParse(env.HUMAN_CHECK_VERIFY_URL)) {
    throw new ConfigError('HUMAN_CHECK_VERIFY_URL: not a URL')
  }
  let segmentAttributes
  let claimAttributes
  try {
    segmentAttributes = env.SEGMENT_ATTRIBUTES === undefined ? undefined : parseSegmentAttributes(env.SEGMENT_ATTRIBUTES, 'SEGMENT_ATTRIBUTES')
    claimAttributes = parseClaimAttributes(env.CLAIM_ATTRIBUTES ?? '', 'CLAIM_ATTRIBUTES')
  } catch (err) {
    throw new ConfigError((err as Error).message)
  }
  if (env.HUMAN_CHECK === 'pow' && env.HUMAN_CHECK_SECRET === undefined && resumeSecrets.length === 0 && production) {
    throw new ConfigError('HUMAN_CHECK_SECRET: HUMAN_CHECK=pow needs a signing key shared by every replica (HUMAN_CHECK_SECRET, or RESUME_TOKEN_SECRET)')
  }
  const stateStore = env.STATE_STORE ?? (env.REDIS_URL !== undefined ? 'redis' : 'memory')
  if (stateStore === 'redis' && env.REDIS_URL === undefined) throw new ConfigError('REDIS_URL: required with STATE_STORE=redis')
  if (stateStore === 'dynamodb' && env.STATE_TABLE === undefined) throw new ConfigError('STATE_TABLE: required with STATE_STORE=dynamodb (the DynamoDB table of shared state)')
  if (stateStore === 'memory' && env.REDIS_URL !== undefined) warnings.push('REDIS_URL is set but STATE_STORE=memory: Redis is not used, and shared state is kept per replica')
  if (production) warnings.push(...plaintextWarnings(env))

  // Each setting once, in the form the service uses; a raw copy beside it would invite reading the wrong one.
  const {
    NODE_ENV: _mode, CONNECT_INSTANCE_ID, CONNECT_CONTACT_FLOW_ID, ALLOWED_ORIGINS: _origins, ALLOWED_ATTRIBUTES, TRUST_PROXY, RATE_LIMIT_WINDOW,
    RESUME_TOKEN_SECRET: _secrets, RESUME_TOKEN_TTL, CUSTOMER_JWT_MAX_AGE, MAX_CONNECTIONS_PER_CLIENT, METRICS_PORT, CONNECT_BURST,
    AVAILABILITY_REFRESH: _refresh, SEGMENT_ATTRIBUTES: _segments, CLAIM_ATTRIBUTES: _claims, STATE_STORE: _store,
    ...settings
  } = env
  const trustProxy = parseTrustProxy(TRUST_PROXY)
  return {
    ...settings,
    /** Everything but NODE_ENV=development: the production checks, and the admin surface off the public port. */
    production,
    instanceId: CONNECT_INSTANCE_ID ?? 'simulated-instance',
    contactFlowId: CONNECT_CONTACT_FLOW_ID ?? 'simulated-contact-flow',
    allowedOrigins: origins.exact,
    /** `https://*.example.com` entries: any subdomain of example.com on that scheme and port. */
    allowedOriginWildcards: origins.wildcards,
    /** ALLOWED_ORIGINS=none: no browser may call, said on purpose (not merely left unset). */
    originsNone: origins.none,
    /** Start-up warnings for the log: settings that work but are probably not what was meant. */
    warnings,
    // Production keeps the metrics and the OpenAPI document off the public port.
    metricsPort: METRICS_PORT ?? (production ? 9464 : undefined),
    allowedAttributes: new Set(list(ALLOWED_ATTRIBUTES)),
    trustProxy,
    rateLimitWindowMs: parseDurationMs('RATE_LIMIT_WINDOW', RATE_LIMIT_WINDOW, 'ms', '60000, "30 seconds" or "1 minute"'),
    resumeSecrets,
    customerJwtMaxAgeSeconds: parseDurationMs('CUSTOMER_JWT_MAX_AGE', CUSTOMER_JWT_MAX_AGE, 's', '300, "15 minutes" or "1 hour"') / 1000,
    // Behind a balancer it holds the connections, so counting them per address would count the balancer.
    maxConnectionsPerClient: MAX_CONNECTIONS_PER_CLIENT ?? (trustProxy === false ? 50 : 0),
    // The schema's pattern already limits the forms to seconds or s/m/h/d.
    resumeTokenTtlSeconds: parseDurationMs('RESUME_TOKEN_TTL', RESUME_TOKEN_TTL, 's', '3600, 12h or 30d') / 1000,
    connectBurst: CONNECT_BURST ?? Math.max(1, Math.ceil(env.CONNECT_RATE_LIMIT ?? 1)),
    availabilityRefreshMs,
    segmentAttributes,
    claimAttributes,
    /** STATE_STORE, or what REDIS_URL implies when unset. */
    stateStore
  }
}

export type Config = ReturnType<typeof loadConfig>

/** Settings whose value is a secret (REDIS_URL may hold a password): shown only as set or unset. */
const SECRET_SETTINGS = new Set<string>(['CUSTOMER_JWT_SECRET', 'REDIS_URL', 'HUMAN_CHECK_SECRET'])

const setOrUnset = (isSet: boolean) => isSet ? 'set' : 'unset'

/** How the summary shows each setting the config holds only in its derived form. */
const DERIVED: { [K in Exclude<keyof Env, keyof Config>]: (config: Config) => unknown } = {
  NODE_ENV: (c) => c.production ? 'production' : 'development',
  CONNECT_INSTANCE_ID: (c) => c.instanceId,
  CONNECT_CONTACT_FLOW_ID: (c) => c.contactFlowId,
  ALLOWED_ORIGINS: (c) => c.originsNone ? 'none' : [...c.allowedOrigins, ...c.allowedOriginWildcards].join(','),
  ALLOWED_ATTRIBUTES: (c) => [...c.allowedAttributes].join(','),
  TRUST_PROXY: (c) => Array.isArray(c.trustProxy) ? c.trustProxy.join(',') : c.trustProxy,
  RATE_LIMIT_WINDOW: (c) => `${c.rateLimitWindowMs} ms`,
  RESUME_TOKEN_SECRET: (c) => setOrUnset(c.resumeSecrets.length > 0),
  RESUME_TOKEN_TTL: (c) => `${c.resumeTokenTtlSeconds} s`,
  CUSTOMER_JWT_MAX_AGE: (c) => `${c.customerJwtMaxAgeSeconds} s`,
  MAX_CONNECTIONS_PER_CLIENT: (c) => c.maxConnectionsPerClient,
  METRICS_PORT: (c) => c.metricsPort,
  CONNECT_BURST: (c) => c.CONNECT_RATE_LIMIT === undefined ? undefined : c.connectBurst,
  AVAILABILITY_REFRESH: (c) => `${c.availabilityRefreshMs} ms`,
  SEGMENT_ATTRIBUTES: (c) => c.segmentAttributes === undefined ? undefined : Object.keys(c.segmentAttributes).join(','),
  STATE_STORE: (c) => c.stateStore,
  CLAIM_ATTRIBUTES: (c) => Object.entries(c.claimAttributes).map(([claim, attribute]) => `${claim}:${attribute}`).join(',')
}

/**
 * The start-up log line's fields: every effective setting, secrets as set/unset, and what an
 * operator checks first (mode, simulator or AWS, region).
 */
export function startupSummary (config: Config, widgets?: { ids (): string[] }) {
  const settings: Record<string, unknown> = {}
  for (const key of Object.keys(EnvSchema.properties) as Array<keyof Env>) {
    if (key in DERIVED) settings[key] = DERIVED[key as keyof typeof DERIVED](config)
    else {
      const value = config[key as Exclude<keyof Env, keyof typeof DERIVED>]
      settings[key] = SECRET_SETTINGS.has(key) ? setOrUnset(value !== undefined) : value
    }
  }
  return {
    mode: config.production ? 'production' : 'development',
    connect: config.CONNECT_SIMULATOR ? 'simulator' : 'aws',
    region: config.AWS_REGION ?? '(SDK default)',
    allowedOrigins: config.originsNone ? 'none' : [...config.allowedOrigins, ...config.allowedOriginWildcards],
    metricsPort: config.metricsPort ?? '(public port)',
    maxConnectionsPerClient: config.maxConnectionsPerClient,
    // The profiles in use; SIGHUP re-reads the file (each reload is logged and counted).
    ...(config.WIDGETS_FILE !== undefined ? { widgets: { file: config.WIDGETS_FILE, profiles: ['default', ...(widgets?.ids() ?? [])], reload: 'SIGHUP' } } : {}),
    settings
  }
}
