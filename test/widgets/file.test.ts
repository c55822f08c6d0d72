import t, { type Test } from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { ConfigError, loadConfig } from '../../src/config.js'
import { parseWidgetFile, readWidgetFile } from '../../src/widgets/file.js'
import { build } from '../helper.js'

const SECRET = 'acme-backend-shared-secret-0123456789'
const env = { ACME_JWT_SECRET: SECRET }
const ok = { id: 'sales', contactFlowId: 'flow-sales', allowedOrigins: ['https://shop.example'] }
const file = (...widgets: unknown[]) => JSON.stringify({ widgets })

/** The ConfigError message `text` raises, or a failure when it loads. */
function refusal (t: Test, text: string, lookup: Record<string, string> = env): string {
  try {
    parseWidgetFile(text, lookup)
  } catch (err) {
    t.type(err, ConfigError)
    return (err as Error).message
  }
  t.fail(`${text} loaded`)
  return ''
}

t.test('the example file in docs/widgets.md loads as written', async (t) => {
  const doc = readFileSync(new URL('../../docs/widgets.md', import.meta.url), 'utf8')
  const example = /## Example[\s\S]*?```json\n([\s\S]*?)```/.exec(doc)?.[1]
  t.ok(example, 'the page has its example')
  const specs = parseWidgetFile(example!, env)
  t.same(specs.map((s) => s.id), ['acme-sales', 'globex-support'])
  t.match(specs[0], {
    contactFlowId: '5f2c1b9e-0000-4a7d-9a51-sales0000001',
    origins: { exact: ['https://shop.acme.example'], wildcards: ['https://*.acme.example'], none: false },
    attributes: { brand: 'acme', queue: 'sales' },
    customerToken: { required: false, secret: SECRET, audience: 'chat.acme.example' },
    rateLimit: { max: 5, windowMs: 60_000 },
    chatDurationInMinutes: 120,
    contactFields: { disconnectOnCustomerExit: ['AGENT'], claimAttributes: { tier: 'customerTier' }, customerIdClaim: 'sub' },
    relatedChats: true
  })
  t.match(specs[1], {
    instanceId: '0b7c8d2e-0000-4f3a-8e11-globex000001',
    persistentChat: 'off',
    customerToken: { required: true },
    contactFields: { segmentAttributes: { 'connect:Subtype': { ValueString: 'connect:Guide' } }, responseMode: 'INCREMENTAL', customerIdClaim: 'customer_number' }
  })
  t.notOk(JSON.stringify(readFileSync(new URL('../../docs/widgets.md', import.meta.url), 'utf8')).includes(SECRET), 'the secret is not in the file')
})

t.test('the example file in docs/widgets.md starts a production app without a single warning', async (t) => {
  const doc = readFileSync(new URL('../../docs/widgets.md', import.meta.url), 'utf8')
  const path = `${t.testdir()}/widgets.json`
  writeFileSync(path, /## Example[\s\S]*?```json\n([\s\S]*?)```/.exec(doc)![1]!)
  const h = await build(t, { NODE_ENV: 'production', WIDGETS_FILE: path, RESUME_TOKEN_SECRET: 'a-resume-token-secret-of-at-least-32-chars' }, { deps: { env } })
  t.same(h.app.widgets.ids(), ['acme-sales', 'globex-support'])
  const warnings = h.logs().trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 40)
  t.same(warnings.map((l) => l.msg), [], 'an operator who copies it starts clean')
})

t.test('the dev sample file loads, with origins for the demo page on its default port', async (t) => {
  const specs = readWidgetFile(new URL('../../demo/widgets.json', import.meta.url).pathname, {})
  t.same(specs.map((s) => s.id), ['sales', 'support'])
  for (const s of specs) t.ok(s.origins.exact.includes('http://localhost:3001'), s.id)
  t.same(specs[0]!.contactFields.disconnectOnCustomerExit, ['AGENT'], 'one sample runs post-chat surveys')
  t.same(specs[1]!.contactFields.segmentAttributes, { 'connect:Subtype': { ValueString: 'connect:Guide' } }, 'one sample is a guide')
})

const bad: Array<[string, string, RegExp]> = [
  ['not JSON', '{"widgets": [', /^WIDGETS_FILE: not valid JSON/],
  ['not an object', '[]', /\(file\): must be object/],
  ['widgets missing', '{}', /widgets: is required/],
  ['an unknown top-level field', JSON.stringify({ widgets: [], extra: 1 }), /extra: is not a known field/],
  ['an id with capitals', file({ ...ok, id: 'Sales' }), /widgets\[0\]\.id: /],
  ['an id too long', file({ ...ok, id: 'a'.repeat(33) }), /widgets\[0\]\.id: /],
  ['a missing flow', file({ id: 'a', allowedOrigins: ['none'] }), /widgets\[0\]\.contactFlowId: is required/],
  ['missing origins', file({ id: 'a', contactFlowId: 'f' }), /widgets\[0\]\.allowedOrigins: is required/],
  ['an unknown profile field', file({ ...ok, colour: 'red' }), /widgets\[0\]\.colour: is not a known field/],
  ['a bad origin, by its index', file(ok, { ...ok, id: 'b', allowedOrigins: ['https://ok.example', 'https://*'] }), /^widgets\[1\]\.allowedOrigins: "https:\/\/\*"/],
  ['none with others', file({ ...ok, allowedOrigins: ['none', 'https://a.example'] }), /^widgets\[0\]\.allowedOrigins: none cannot be combined/],
  ['a bad attribute key', file({ ...ok, attributes: { 'no spaces': 'x' } }), /widgets\[0\]\.attributes/],
  ['a non-string attribute', file({ ...ok, attributes: { brand: 1 } }), /widgets\[0\]\.attributes\.brand: /],
  ['an unknown persistent chat mode', file({ ...ok, persistentChat: 'maybe' }), /widgets\[0\]\.persistentChat: /],
  ['a feature that does not exist', file({ ...ok, featurePermissions: { VIDEO: true } }), /widgets\[0\]\.featurePermissions\.VIDEO: is not a known field/],
  ['a secret in the file', file({ ...ok, customerToken: { secret: SECRET } }), /widgets\[0\]\.customerToken\.secret: is not a known field/],
  ['a secretEnv that is not set', file({ ...ok, customerToken: { secretEnv: 'NOT_SET_ANYWHERE' } }), /^widgets\[0\]\.customerToken\.secretEnv: the environment variable NOT_SET_ANYWHERE is not set/],
  ['a short secret', file({ ...ok, customerToken: { secretEnv: 'SHORT' } }), /^widgets\[0\]\.customerToken\.secretEnv: SHORT must hold at least 32/],
  ['required without a key', file({ ...ok, customerToken: { required: true } }), /^widgets\[0\]\.customerToken\.required: needs secretEnv or jwksUrl/],
  ['a JWKS URL that is not a URL', file({ ...ok, customerToken: { jwksUrl: 'nope' } }), /^widgets\[0\]\.customerToken\.jwksUrl: not a URL/],
  ['a rate-limit window typo', file({ ...ok, rateLimit: { max: 5, window: '1 minnute' } }), /^widgets\[0\]\.rateLimit\.window: "1 minnute" is not a duration/],
  ['a chat duration out of range', file({ ...ok, chatDurationInMinutes: 5 }), /widgets\[0\]\.chatDurationInMinutes: /],
  ['the reserved default id', file({ ...ok, id: 'default' }), /^widgets\[0\]\.id: "default" is the profile the environment describes/],
  ['a repeated id', file(ok, ok), /^widgets\[1\]\.id: "sales" is used by an earlier widget/]
]

for (const [name, text, pattern] of bad) {
  t.test(`${name} -> ConfigError naming the JSON path`, async (t) => {
    t.match(refusal(t, text, { ...env, SHORT: 'short' }), pattern)
  })
}

t.test('an unreadable file is a ConfigError naming WIDGETS_FILE, at start-up through buildApp too', async (t) => {
  t.throws(() => readWidgetFile('/nonexistent/widgets.json', {}), { name: 'ConfigError', message: /^WIDGETS_FILE: cannot read \/nonexistent\/widgets\.json \(ENOENT\)/ })
  const dir = t.testdir()
  const path = `${dir}/big.json`
  writeFileSync(path, ' '.repeat(1024 * 1024 + 1))
  t.throws(() => readWidgetFile(path, {}), { message: /larger than/ })
  const { buildApp } = await import('../../src/app.js')
  await t.rejects(buildApp(loadConfig({ NODE_ENV: 'development', CONNECT_SIMULATOR: 'true', LOG_LEVEL: 'silent', WIDGETS_FILE: '/nonexistent/widgets.json' }), { credentialsWaitMs: 0 }), ConfigError)
})
