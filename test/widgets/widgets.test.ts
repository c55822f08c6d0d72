import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { startupSummary } from '../../src/config.js'
import { build, metricSample, ORIGIN, validBody } from '../helper.js'
import { mint, secretBytes } from '../trust/tokens.js'

const SALES_ORIGIN = 'https://shop.acme.example'
const SUPPORT_ORIGIN = 'https://help.globex.example'
const SALES_SECRET = 'sales-backend-shared-secret-0123456789'
const SUPPORT_SECRET = 'support-backend-shared-secret-012345678'

const sales = {
  id: 'sales',
  contactFlowId: 'flow-sales',
  allowedOrigins: [SALES_ORIGIN, 'https://*.acme.example'],
  allowedAttributes: ['topic'],
  attributes: { brand: 'acme' },
  featurePermissions: { ATTACHMENTS: true },
  customerToken: { secretEnv: 'SALES_JWT_SECRET' },
  chatDurationInMinutes: 120
}
const support = {
  id: 'support',
  instanceId: 'instance-globex',
  contactFlowId: 'flow-support',
  allowedOrigins: [SUPPORT_ORIGIN],
  allowedAttributes: ['language'],
  attributes: { brand: 'globex' },
  customerToken: { secretEnv: 'SUPPORT_JWT_SECRET' }
}

/** The real app and simulator with a WIDGETS_FILE of `widgets`; `write` replaces the file (for reloads). */
async function withWidgets (t: Test, widgets: unknown[], env: Record<string, string> = {}) {
  const path = `${t.testdir()}/widgets.json`
  const write = (content: unknown) => writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content))
  write({ widgets })
  const h = await build(t, { WIDGETS_FILE: path, ...env }, { deps: { env: { SALES_JWT_SECRET: SALES_SECRET, SUPPORT_JWT_SECRET: SUPPORT_SECRET } } })
  return { ...h, write }
}

function start (h: { app: Awaited<ReturnType<typeof build>>['app'] }, widget: string | undefined, body: unknown, headers: Record<string, string> = {}) {
  return h.app.inject({
    method: 'POST',
    url: widget === undefined ? '/chat/start' : `/chat/start/${widget}`,
    headers: { 'content-type': 'application/json', ...headers },
    payload: JSON.stringify(body)
  })
}

const preflight = (h: { app: Awaited<ReturnType<typeof build>>['app'] }, widget: string, origin: string) => h.app.inject({
  method: 'OPTIONS',
  url: `/chat/start/${widget}`,
  headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' }
})

/** The value of one sample line of /metrics; undefined when absent. */
async function sample (h: { app: Awaited<ReturnType<typeof build>>['app'] }, series: string): Promise<number | undefined> {
  return metricSample((await h.app.inject('/metrics')).body, series)
}

t.test('two profiles: each start reaches Connect with its own flow, instance and fixed attributes', async (t) => {
  const h = await withWidgets(t, [sales, support])
  const a = await start(h, 'sales', validBody({ Attributes: { topic: 'shoes', brand: 'forged' } }), { origin: SALES_ORIGIN })
  t.equal(a.statusCode, 400, 'brand is not a key the browser may send')
  const ok = await start(h, 'sales', validBody({ Attributes: { topic: 'shoes' } }), { origin: 'https://eu.acme.example' })
  t.equal(ok.statusCode, 200)
  t.same(ok.json().data.featurePermissions, { MESSAGING_MARKDOWN: true, ATTACHMENTS: true }, 'its own permission, the other from the environment')
  t.equal(ok.headers['access-control-allow-origin'], 'https://eu.acme.example', 'a subdomain wildcard of this widget')
  const b = await start(h, 'support', validBody({ Attributes: { language: 'de' } }), { origin: SUPPORT_ORIGIN })
  t.equal(b.statusCode, 200)
  const plain = await start(h, undefined, validBody({ Attributes: { topic: 'x', language: 'fr' } }), { origin: ORIGIN })
  t.equal(plain.statusCode, 200, 'the default profile keeps the environment\'s settings')

  t.equal(h.sim.requests.length, 3)
  t.match(h.sim.requests[0]!.input, { ContactFlowId: 'flow-sales', InstanceId: 'simulated-instance', Attributes: { topic: 'shoes', brand: 'acme' }, ChatDurationInMinutes: 120 })
  t.match(h.sim.requests[1]!.input, { ContactFlowId: 'flow-support', InstanceId: 'instance-globex', Attributes: { language: 'de', brand: 'globex' } })
  t.equal(h.sim.requests[1]!.input.ChatDurationInMinutes, 180, 'no profile cap: an anonymous chat gets ANONYMOUS_MAX_CHAT_DURATION_MINUTES')
  t.same(h.sim.requests[2]!.input.Attributes, { topic: 'x', language: 'fr' })
  t.equal(h.sim.requests[2]!.input.ContactFlowId, 'simulated-contact-flow')

  t.equal(await sample(h, 'ccg_chat_starts_total{outcome="started",widget="sales"}'), 1)
  t.equal(await sample(h, 'ccg_chat_starts_total{outcome="started",widget="support"}'), 1)
  t.equal(await sample(h, 'ccg_chat_starts_total{outcome="started"}'), 1, 'the default profile\'s series as before')
  const lines = h.logs().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
  t.ok(lines.some((l) => l.msg === 'request completed' && l.widget === 'sales' && typeof l.contactId === 'string'), 'log lines carry the widget')
  t.ok(lines.some((l) => l.msg === 'request completed' && l.widget === 'support'))
})

t.test('a fixed attribute wins over a customer token\'s; the profile\'s chat duration caps the browser\'s', async (t) => {
  const h = await withWidgets(t, [sales])
  const token = await mint({ sub: 'c-1', attributes: { brand: 'other', tier: 'gold' } }, secretBytes(SALES_SECRET))
  const res = await start(h, 'sales', validBody({ ChatDurationInMinutes: 600 }), { origin: SALES_ORIGIN, authorization: `Bearer ${token}` })
  t.equal(res.statusCode, 200)
  t.match(h.sim.requests[0]!.input, { Attributes: { brand: 'acme', tier: 'gold' }, ChatDurationInMinutes: 120 })
})

t.test('an origin allowed for one widget is refused on another, preflight included, before Connect', async (t) => {
  const h = await withWidgets(t, [sales, support])
  const refused = await start(h, 'support', validBody(), { origin: SALES_ORIGIN })
  t.equal(refused.statusCode, 403)
  t.equal(refused.json().code, 'ORIGIN_NOT_ALLOWED')
  t.notOk(refused.headers['access-control-allow-origin'])
  t.equal((await start(h, undefined, validBody(), { origin: SALES_ORIGIN })).statusCode, 403, 'nor on the default profile')
  t.equal((await start(h, 'sales', validBody(), { origin: ORIGIN })).statusCode, 403, 'the default origin is not the widget\'s')
  const pre = await preflight(h, 'sales', SALES_ORIGIN)
  t.equal(pre.statusCode, 204)
  t.equal(pre.headers['access-control-allow-origin'], SALES_ORIGIN)
  const crossed = await preflight(h, 'support', SALES_ORIGIN)
  t.equal(crossed.statusCode, 403)
  t.notOk(crossed.headers['access-control-allow-origin'])
  t.equal(h.sim.requests.length, 0)
  t.equal(await sample(h, 'ccg_origin_refused_total{widget="support"}'), 2, 'the POST and the preflight')
  t.equal(await sample(h, 'ccg_origin_refused_total{widget="sales"}'), 1)
  const logged = h.logs().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.originRefused !== undefined).map((l) => [l.widget, l.origin, l.originRefused])
  t.same(logged, [
    ['support', SALES_ORIGIN, 'not in the widget\'s allowedOrigins'],
    [undefined, SALES_ORIGIN, 'not in ALLOWED_ORIGINS'],
    ['sales', ORIGIN, 'not in the widget\'s allowedOrigins'],
    ['support', SALES_ORIGIN, 'not in the widget\'s allowedOrigins']
  ], 'each refusal logged with its widget and the origin to add')
})

t.test('an unknown widget: 404 WIDGET_NOT_FOUND in our shape, CORS for no one, preflight too', async (t) => {
  const h = await withWidgets(t, [sales])
  for (const id of ['nope', 'Sales', 'default', 'a'.repeat(40)]) {
    const res = await start(h, id, validBody(), { origin: SALES_ORIGIN })
    t.equal(res.statusCode, 404, id)
    t.match(res.json(), { statusCode: 404, error: 'Not Found', code: 'WIDGET_NOT_FOUND', message: String })
    t.notOk(res.headers['access-control-allow-origin'], id)
    t.equal(res.headers['x-content-type-options'], 'nosniff', 'the headers every answer carries')
  }
  const pre = await preflight(h, 'nope', SALES_ORIGIN)
  t.equal(pre.statusCode, 404)
  t.notOk(pre.headers['access-control-allow-origin'])
  t.equal(h.sim.requests.length, 0)
  t.equal(await sample(h, 'ccg_widget_not_found_total'), 5)
  t.notMatch((await h.app.inject('/metrics')).body, /widget="nope"/, 'no label from what a client sent')
})

t.test('without WIDGETS_FILE every widget path is unknown and /chat/start is as before', async (t) => {
  const h = await build(t)
  t.equal((await start(h, 'sales', validBody(), { origin: ORIGIN })).json().code, 'WIDGET_NOT_FOUND')
  t.equal((await start(h, undefined, validBody(), { origin: ORIGIN })).statusCode, 200)
  t.equal(await sample(h, 'ccg_widget_profiles'), 1)
  t.notOk('widgets' in startupSummary(h.config))
})

t.test('a resume token continues a chat only on the widget that issued it', async (t) => {
  const h = await withWidgets(t, [sales, support])
  const first = await start(h, 'sales', validBody(), { origin: SALES_ORIGIN })
  const resumeToken = first.json().data.resumeToken as string
  const fromDefault = (await start(h, undefined, validBody(), { origin: ORIGIN })).json().data.resumeToken as string
  h.sim.endChat(first.json().data.startChatResult.ContactId)
  const ask = (token: string) => validBody({ PersistentChat: { RehydrationType: 'ENTIRE_PAST_SESSION', ResumeToken: token } })

  const onB = await start(h, 'support', ask(resumeToken), { origin: SUPPORT_ORIGIN })
  t.equal(onB.statusCode, 403)
  t.equal(onB.json().code, 'RESUME_TOKEN_REFUSED')
  t.equal((await start(h, undefined, ask(resumeToken), { origin: ORIGIN })).json().code, 'RESUME_TOKEN_REFUSED', 'nor on the default profile')
  t.equal((await start(h, 'sales', ask(fromDefault), { origin: SALES_ORIGIN })).json().code, 'RESUME_TOKEN_REFUSED', 'the default profile\'s token on a widget')
  t.equal(h.sim.requests.length, 2, 'Connect was not called for any of them')
  const onA = await start(h, 'sales', ask(resumeToken), { origin: SALES_ORIGIN })
  t.equal(onA.statusCode, 200, 'still good on its own widget: the refusals did not spend it')
  t.equal(h.sim.requests.at(-1)!.input.ContactFlowId, 'flow-sales')
})

t.test('a customer token is checked with the widget\'s own secret: A\'s token is refused on B', async (t) => {
  const h = await withWidgets(t, [{ ...sales, customerToken: { secretEnv: 'SALES_JWT_SECRET', required: true } }, support])
  const salesToken = await mint({ sub: 'c-7', attributes: { tier: 'gold' } }, secretBytes(SALES_SECRET))
  const onA = await start(h, 'sales', validBody(), { origin: SALES_ORIGIN, authorization: `Bearer ${salesToken}` })
  t.equal(onA.statusCode, 200)
  const onB = await start(h, 'support', validBody(), { origin: SUPPORT_ORIGIN, authorization: `Bearer ${salesToken}` })
  t.equal(onB.statusCode, 401)
  t.equal(onB.json().code, 'CUSTOMER_TOKEN_INVALID')
  t.equal((await start(h, 'sales', validBody(), { origin: SALES_ORIGIN })).statusCode, 401, 'required on A')
  t.equal((await start(h, 'support', validBody(), { origin: SUPPORT_ORIGIN })).statusCode, 200, 'optional on B')
  t.equal((await start(h, undefined, validBody(), { origin: ORIGIN, authorization: `Bearer ${salesToken}` })).statusCode, 200,
    'the default profile has no customer-token key: a token means nothing there')
  t.notMatch(h.logs(), SALES_SECRET)
})

t.test('the same Idempotency-Key on two widgets opens two chats; on one widget, one', async (t) => {
  const same = { ...support, id: 'support-2', allowedOrigins: [SALES_ORIGIN], contactFlowId: sales.contactFlowId, instanceId: undefined, attributes: sales.attributes, allowedAttributes: [] }
  const h = await withWidgets(t, [{ ...sales, chatDurationInMinutes: undefined }, same])
  const key = { origin: SALES_ORIGIN, 'idempotency-key': 'k-0123456789abcdef' }
  const a1 = await start(h, 'sales', validBody(), key)
  const a2 = await start(h, 'sales', validBody(), key)
  const b = await start(h, 'support-2', validBody(), key)
  t.equal(a1.json().data.startChatResult.ContactId, a2.json().data.startChatResult.ContactId, 'a retry on one widget')
  t.not(b.json().data.startChatResult.ContactId, a1.json().data.startChatResult.ContactId, 'same flow and body, other widget')
  t.not(h.sim.requests[0]!.clientToken, h.sim.requests[2]!.clientToken)
})

t.test('a widget with its own rate limit counts apart; the others share the default limit', async (t) => {
  const h = await withWidgets(t, [{ ...sales, rateLimit: { max: 1, window: '1 minute' } }, support], { RATE_LIMIT_MAX: '2' })
  t.equal((await start(h, 'sales', validBody(), { origin: SALES_ORIGIN })).statusCode, 200)
  const limited = await start(h, 'sales', validBody(), { origin: SALES_ORIGIN })
  t.equal(limited.statusCode, 429)
  t.equal(limited.headers['access-control-allow-origin'], SALES_ORIGIN, 'with its CORS headers')
  t.equal(limited.headers['x-ratelimit-limit'], '1')
  // The default limit of 2 is shared by the default profile and support, and untouched by sales.
  t.equal((await start(h, undefined, validBody(), { origin: ORIGIN })).statusCode, 200)
  t.equal((await start(h, 'support', validBody(), { origin: SUPPORT_ORIGIN })).statusCode, 200)
  t.equal((await start(h, 'support', validBody(), { origin: SUPPORT_ORIGIN })).statusCode, 429)
  t.equal(await sample(h, 'ccg_rate_limited_total{widget="sales"}'), 1)
  t.equal(await sample(h, 'ccg_rate_limited_total{widget="support"}'), 1)
})

t.test('reload: a valid file applies to new requests; an invalid one is refused, logged, and the old profiles stay', async (t) => {
  const h = await withWidgets(t, [sales])
  t.equal(await sample(h, 'ccg_widget_profiles'), 2)
  h.write({ widgets: [{ ...sales, contactFlowId: 'flow-sales-v2' }, support] })
  t.same(h.app.widgets.reload(), { ok: true, widgets: ['sales', 'support'] })
  t.equal((await start(h, 'sales', validBody(), { origin: SALES_ORIGIN })).statusCode, 200)
  t.equal(h.sim.requests[0]!.input.ContactFlowId, 'flow-sales-v2')
  t.equal((await start(h, 'support', validBody(), { origin: SUPPORT_ORIGIN })).statusCode, 200, 'a widget added by the reload')

  for (const broken of ['{"widgets": [', JSON.stringify({ widgets: [{ ...sales, allowedOrigins: ['*'] }] }), JSON.stringify({ widgets: [{ ...sales, customerToken: { secretEnv: 'MISSING_SECRET' } }] })]) {
    h.write(broken)
    const result = h.app.widgets.reload()
    t.equal(result.ok, false)
  }
  t.equal((await start(h, 'support', validBody(), { origin: SUPPORT_ORIGIN })).statusCode, 200, 'the old profiles are still served')
  t.equal(h.sim.requests.at(-1)!.input.ContactFlowId, 'flow-support')
  t.equal(await sample(h, 'ccg_widget_reloads_total{result="applied"}'), 1)
  t.equal(await sample(h, 'ccg_widget_reloads_total{result="refused"}'), 3)
  t.equal(await sample(h, 'ccg_widget_profiles'), 3)
  const refusals = h.logs().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.level === 50)
  t.equal(refusals.length, 3)
  t.match(refusals[1], { msg: /NOT reloaded/, reason: /widgets\[0\]\.allowedOrigins/ })
  t.match(refusals[2], { reason: /widgets\[0\]\.customerToken\.secretEnv: the environment variable MISSING_SECRET is not set/ })

  h.write({ widgets: [support] })
  t.equal(h.app.widgets.reload().ok, true)
  t.equal((await start(h, 'sales', validBody(), { origin: SALES_ORIGIN })).json().code, 'WIDGET_NOT_FOUND', 'a widget removed by a reload')
})

t.test('reload: a request under way finishes on the profile it started with', async (t) => {
  const h = await withWidgets(t, [sales])
  h.sim.setLatency(400)
  const pending = start(h, 'sales', validBody(), { origin: SALES_ORIGIN })
  for (let i = 0; i < 200 && h.sim.requests.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(h.sim.requests.length, 1, 'the first start reached Connect')
  h.write({ widgets: [{ ...support, allowedOrigins: [SALES_ORIGIN] }] })
  t.equal(h.app.widgets.reload().ok, true)
  const res = await pending
  t.equal(res.statusCode, 200, 'its widget was removed meanwhile, and it still finished')
  t.same(res.json().data.featurePermissions, { MESSAGING_MARKDOWN: true, ATTACHMENTS: true }, 'with the old profile\'s answer')
  t.equal(h.sim.requests[0]!.input.ContactFlowId, 'flow-sales')
  t.equal((await start(h, 'sales', validBody(), { origin: SALES_ORIGIN })).statusCode, 404, 'a new request sees the new file')
})

t.test('OpenAPI documents the widget path parameter; the start-up summary shows the profiles and the reload signal', async (t) => {
  const h = await withWidgets(t, [sales, support])
  const doc = (await h.app.inject('/docs/json')).json()
  const op = doc.paths['/chat/start/{widget}']?.post
  t.ok(op, 'the widget route is documented')
  t.match(op.parameters, [{ in: 'path', name: 'widget', required: true, schema: { pattern: '^[a-z0-9-]{1,32}$' } }])
  t.ok(doc.paths['/chat/start']?.post)
  t.match(startupSummary(h.config, h.app.widgets), { widgets: { file: /widgets\.json$/, profiles: ['default', 'sales', 'support'], reload: 'SIGHUP' } })
})
