import fc from 'fast-check'
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { ConfigError } from '../../src/config.js'
import { parseWidgetFile } from '../../src/widgets/file.js'
import { build, validBody } from '../helper.js'
import { runs, seedOptions } from './harness.js'

// Property tests over WIDGETS_FILE: whatever the file holds, loading it either yields profiles or
// throws a ConfigError; nothing else escapes, so neither start-up nor a SIGHUP reload can crash.

const env = { SECRET_A: 's'.repeat(40), SHORT: 'short' }
const profile = fc.record({
  id: fc.oneof(fc.stringMatching(/^[a-z0-9-]{1,32}$/), fc.string({ maxLength: 40 }), fc.constant('default')),
  contactFlowId: fc.oneof(fc.string({ maxLength: 20 }), fc.integer()),
  instanceId: fc.option(fc.string({ maxLength: 10 }), { nil: undefined }),
  allowedOrigins: fc.array(fc.oneof(
    fc.constantFrom('https://a.example', 'https://*.example.com', 'none', '*', 'https://*', 'http://x.example:80/', 'capacitor://localhost', ''),
    fc.webUrl(), fc.string({ maxLength: 30 })), { maxLength: 4 }),
  allowedAttributes: fc.option(fc.array(fc.string({ maxLength: 10 }), { maxLength: 4 }), { nil: undefined }),
  attributes: fc.option(fc.dictionary(fc.string({ maxLength: 10 }), fc.oneof(fc.string({ maxLength: 10 }), fc.integer())), { nil: undefined }),
  featurePermissions: fc.option(fc.dictionary(fc.constantFrom('MESSAGING_MARKDOWN', 'ATTACHMENTS', 'VIDEO'), fc.oneof(fc.boolean(), fc.string())), { nil: undefined }),
  persistentChat: fc.option(fc.constantFrom('verified', 'unverified', 'off', 'maybe'), { nil: undefined }),
  customerToken: fc.option(fc.record({
    required: fc.option(fc.boolean(), { nil: undefined }),
    secretEnv: fc.option(fc.constantFrom('SECRET_A', 'SHORT', 'MISSING', 'bad name', '__proto__'), { nil: undefined }),
    jwksUrl: fc.option(fc.oneof(fc.webUrl(), fc.string({ maxLength: 10 })), { nil: undefined })
  }, { requiredKeys: [] }), { nil: undefined }),
  rateLimit: fc.option(fc.record({ max: fc.integer({ min: -1, max: 2_000_000 }), window: fc.oneof(fc.constantFrom('1 minute', '500', '0', '1 fortnight'), fc.string({ maxLength: 10 })) }), { nil: undefined }),
  chatDurationInMinutes: fc.option(fc.integer({ min: 0, max: 20_000 }), { nil: undefined })
}, { requiredKeys: [] })

/** Near-valid files (most fields right, some wrong), any JSON, and text that is not JSON at all. */
const fileText = fc.oneof(
  fc.array(profile, { maxLength: 4 }).map((widgets) => JSON.stringify({ widgets })),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify({ widgets: [v] })),
  fc.string({ maxLength: 200 }),
  fc.constantFrom('{"widgets":[{"__proto__":{"id":"x"}}]}', '{"__proto__":{"widgets":[]}}', '{"widgets":[{"id":"a","contactFlowId":"f","allowedOrigins":["none"],"attributes":{"__proto__":"x","constructor":"y"}}]}')
)

t.test('any file text: profiles or a ConfigError, never another exception, never a polluted prototype', async (t) => {
  let loaded = 0
  let refused = 0
  await fc.assert(fc.property(fileText, (text) => {
    try {
      const specs = parseWidgetFile(text, env)
      loaded++
      for (const s of specs) {
        if (!/^[a-z0-9-]{1,32}$/.test(s.id) || s.id === 'default') throw new Error(`loaded an id the contract refuses: ${s.id}`)
        if (s.customerToken?.secret !== undefined && s.customerToken.secret.length < 32) throw new Error('loaded a short secret')
      }
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      refused++
      if (!/^(WIDGETS_FILE|widgets\[\d+\])/.test(err.message)) throw new Error(`a refusal that names no path: ${err.message}`, { cause: err })
    }
    if (({} as Record<string, unknown>).id !== undefined) throw new Error('Object.prototype polluted')
  }), { numRuns: runs(600), ...seedOptions() })
  t.ok(loaded > 0, `some files loaded (${loaded})`)
  t.ok(refused > 0, `some files refused (${refused})`)
})

t.test('reloading generated files never crashes the app: a good file applies, a bad one keeps the profiles in use', async (t) => {
  const path = `${t.testdir()}/widgets.json`
  const good = { id: 'stable', contactFlowId: 'flow-stable', allowedOrigins: ['https://a.example'] }
  writeFileSync(path, JSON.stringify({ widgets: [good] }))
  const h = await build(t, { WIDGETS_FILE: path }, { deps: { env } })
  let expected = ['stable']
  await fc.assert(fc.asyncProperty(fileText, async (text) => {
    writeFileSync(path, text)
    const result = h.app.widgets.reload()
    if (result.ok) expected = result.widgets
    if (JSON.stringify(h.app.widgets.ids()) !== JSON.stringify(expected)) throw new Error('the profiles in use are not the last good ones')
  }), { numRuns: runs(150), ...seedOptions() })
  writeFileSync(path, JSON.stringify({ widgets: [good] }))
  t.equal(h.app.widgets.reload().ok, true)
  const res = await h.app.inject({ method: 'POST', url: '/chat/start/stable', headers: { 'content-type': 'application/json', origin: 'https://a.example' }, payload: JSON.stringify(validBody()) })
  t.equal(res.statusCode, 200, 'the app still serves after every reload')
})
