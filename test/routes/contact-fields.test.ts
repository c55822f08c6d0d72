import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { ConfigError, loadConfig } from '../../src/config.js'
import { parseWidgetFile } from '../../src/widgets/file.js'
import { build, ORIGIN, startChat, validBody } from '../helper.js'
import { CUSTOMER_SECRET, mint, secretBytes } from '../trust/tokens.js'

// Each StartChatContact field reaches Connect (the simulator, through the real SDK) exactly when its
// source allows: the widget profile, a verified customer token, never the body alone.

const hs = { CUSTOMER_JWT_SECRET: CUSTOMER_SECRET }
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const GUIDE = { 'connect:Subtype': { ValueString: 'connect:Guide' } }
const INTERACTIVE = 'application/vnd.amazonaws.connect.message.interactive'

/** The real app with a WIDGETS_FILE holding `widgets` (each with the test origin unless it names its own). */
async function withWidgets (t: Test, widgets: Array<Record<string, unknown>>, env: Record<string, string> = {}) {
  const path = `${t.testdir()}/widgets.json`
  writeFileSync(path, JSON.stringify({ widgets: widgets.map((w) => ({ contactFlowId: `flow-${String(w.id)}`, allowedOrigins: [ORIGIN], ...w })) }))
  return build(t, { WIDGETS_FILE: path, ...env }, { deps: { env: { W_SECRET: CUSTOMER_SECRET } } })
}

function startOn (app: Awaited<ReturnType<typeof build>>['app'], widget: string, body: unknown, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: `/chat/start/${widget}`, headers: { 'content-type': 'application/json', ...headers }, payload: JSON.stringify(body) })
}

t.test('an anonymous start carries no CustomerId, no segment attributes, no related contact, no disconnect or response mode', async (t) => {
  const { app, sim } = await build(t, hs)
  const res = await startChat(app, validBody())
  t.equal(res.statusCode, 200)
  const input = sim.requests[0]!.input
  for (const field of ['CustomerId', 'SegmentAttributes', 'RelatedContactId', 'DisconnectOnCustomerExit', 'ParticipantConfiguration']) {
    t.notOk(field in input, `${field} absent`)
  }
})

t.test('a verified customer token: CustomerId from sub, connect:CustomerAuthentication AUTHENTICATED', async (t) => {
  const { app, sim } = await build(t, hs)
  const res = await startChat(app, validBody(), bearer(await mint({ sub: 'cust-42' }, secretBytes())))
  t.equal(res.statusCode, 200)
  const input = sim.requests[0]!.input
  t.equal(input.CustomerId, 'cust-42')
  t.same(input.SegmentAttributes, { 'connect:CustomerAuthentication': { ValueString: 'AUTHENTICATED' } })
})

t.test('a verified token without the CustomerId claim is still authenticated, without a CustomerId', async (t) => {
  const { app, sim } = await build(t, hs)
  t.equal((await startChat(app, validBody(), bearer(await mint({ attributes: { tier: 'gold' } }, secretBytes())))).statusCode, 200)
  t.notOk('CustomerId' in sim.requests[0]!.input)
  t.same(sim.requests[0]!.input.SegmentAttributes, { 'connect:CustomerAuthentication': { ValueString: 'AUTHENTICATED' } })
})

t.test('CUSTOMER_ID_CLAIM and CLAIM_ATTRIBUTES: the named claims become CustomerId and attributes', async (t) => {
  const { app, sim } = await build(t, { ...hs, CUSTOMER_ID_CLAIM: 'crm_id', CLAIM_ATTRIBUTES: 'tier:customerTier,acct:accountNumber' })
  const token = await mint({ sub: 'cust-42', crm_id: 'CRM-7', tier: 'gold', acct: 12345, other: 'not mapped' }, secretBytes())
  t.equal((await startChat(app, validBody({ Attributes: { topic: 'billing' } }), bearer(token))).statusCode, 200)
  const input = sim.requests[0]!.input
  t.equal(input.CustomerId, 'CRM-7')
  t.same(input.Attributes, { topic: 'billing', customerTier: 'gold', accountNumber: '12345' })
})

t.test('claims that cannot be a CustomerId or an attribute -> 401 before Connect', async (t) => {
  const { app, sim } = await build(t, { ...hs, CLAIM_ATTRIBUTES: 'tier:customerTier' })
  for (const claims of [{ sub: 'x'.repeat(129) }, { sub: 'ok', tier: { nested: true } }, { sub: 'ok', tier: ['gold'] }]) {
    const res = await startChat(app, validBody(), bearer(await mint(claims, secretBytes())))
    t.equal(res.statusCode, 401, JSON.stringify(claims).slice(0, 40))
    t.equal(res.json().code, 'CUSTOMER_TOKEN_INVALID')
  }
  t.equal(sim.requests.length, 0)
})

t.test('a body that sets what only the gateway may set -> 400 naming each field, Connect not called', async (t) => {
  const { app, sim } = await build(t, hs)
  const forged = {
    SegmentAttributes: { 'connect:CustomerAuthentication': { ValueString: 'AUTHENTICATED' } },
    CustomerId: 'someone-else',
    RelatedContactId: 'c0ffee',
    DisconnectOnCustomerExit: ['AGENT']
  }
  for (const [field, value] of Object.entries(forged)) {
    const res = await startChat(app, validBody({ [field]: value }), bearer(await mint({ sub: 'cust-1' }, secretBytes())))
    t.equal(res.statusCode, 400, field)
    t.match(res.json(), { code: 'VALIDATION_FAILED', details: [{ path: field, message: /never accepted from a client/ }] }, field)
  }
  const res = await startChat(app, validBody({ ParticipantConfiguration: { ResponseMode: 'INCREMENTAL' } }))
  t.equal(res.statusCode, 400)
  t.match(res.json().details, [{ path: 'ParticipantConfiguration.ResponseMode' }])
  t.equal(sim.requests.length, 0)
})

t.test('the default profile from the environment: segment attributes, disconnect and response mode reach Connect', async (t) => {
  const { app, sim } = await build(t, {
    SEGMENT_ATTRIBUTES: JSON.stringify({ 'connect:Subtype': { ValueString: 'connect:Chat' } }),
    DISCONNECT_ON_CUSTOMER_EXIT: 'AGENT',
    RESPONSE_MODE: 'INCREMENTAL'
  })
  t.equal((await startChat(app, validBody())).statusCode, 200)
  t.match(sim.requests[0]!.input, {
    SegmentAttributes: { 'connect:Subtype': { ValueString: 'connect:Chat' } },
    DisconnectOnCustomerExit: ['AGENT'],
    ParticipantConfiguration: { ResponseMode: 'INCREMENTAL' }
  })
  t.equal((await startChat(app, validBody({ ParticipantConfiguration: { ResponseMode: 'COMPLETE' } }))).statusCode, 200)
  t.same(sim.requests[1]!.input.ParticipantConfiguration, { ResponseMode: 'COMPLETE' }, 'a client may ask for whole replies')
  t.equal((await startChat(app, validBody({ ParticipantConfiguration: { ResponseMode: 'INCREMENTAL' } }))).statusCode, 200, 'and for what the profile streams')
  t.same(sim.requests[2]!.input.ParticipantConfiguration, { ResponseMode: 'INCREMENTAL' })
})

t.test('a guide profile: its subtype, plus the interactive content types Connect needs, and an authenticated customer on top', async (t) => {
  const { app, sim } = await withWidgets(t, [{ id: 'guide', segmentAttributes: GUIDE, customerToken: { secretEnv: 'W_SECRET' } }])
  t.equal((await startOn(app, 'guide', validBody())).statusCode, 200)
  t.same(sim.requests[0]!.input.SegmentAttributes, GUIDE)
  t.same(sim.requests[0]!.input.SupportedMessagingContentTypes, ['text/plain', INTERACTIVE, `${INTERACTIVE}.response`])
  const res = await startOn(app, 'guide', validBody({ SupportedMessagingContentTypes: ['text/markdown', 'text/plain'] }), bearer(await mint({ sub: 'c-9' }, secretBytes())))
  t.equal(res.statusCode, 200)
  t.same(sim.requests[1]!.input.SupportedMessagingContentTypes, ['text/markdown', 'text/plain', INTERACTIVE, `${INTERACTIVE}.response`])
  t.same(sim.requests[1]!.input.SegmentAttributes, { ...GUIDE, 'connect:CustomerAuthentication': { ValueString: 'AUTHENTICATED' } })
  t.equal(sim.requests[1]!.input.CustomerId, 'c-9')
})

t.test('a survey profile sends DisconnectOnCustomerExit; another profile of the same deployment does not', async (t) => {
  const { app, sim } = await withWidgets(t, [{ id: 'survey', disconnectOnCustomerExit: ['AGENT'] }, { id: 'plain' }])
  t.equal((await startOn(app, 'survey', validBody())).statusCode, 200)
  t.equal((await startOn(app, 'plain', validBody())).statusCode, 200)
  t.same(sim.requests[0]!.input.DisconnectOnCustomerExit, ['AGENT'])
  t.notOk('DisconnectOnCustomerExit' in sim.requests[1]!.input)
})

t.test('claimAttributes and customerIdClaim per profile', async (t) => {
  const { app, sim } = await withWidgets(t, [{
    id: 'bank', customerToken: { secretEnv: 'W_SECRET' }, claimAttributes: { tier: 'customerTier' }, customerIdClaim: 'acct', attributes: { customerTier: 'profile-wins' }
  }])
  const res = await startOn(app, 'bank', validBody(), bearer(await mint({ sub: 's', acct: 'A-1', tier: 'gold' }, secretBytes())))
  t.equal(res.statusCode, 200)
  t.equal(sim.requests[0]!.input.CustomerId, 'A-1')
  t.same(sim.requests[0]!.input.Attributes, { customerTier: 'profile-wins' }, 'the profile\'s own attributes still win')
})

t.test('the profile shapes are checked when the profile is read, naming the path', async (t) => {
  const file = (w: Record<string, unknown>) => JSON.stringify({ widgets: [{ id: 'w', contactFlowId: 'f', allowedOrigins: [ORIGIN], ...w }] })
  t.throws(() => parseWidgetFile(file({ segmentAttributes: { 'connect:Subtype': 'connect:Guide' } }), {}), { name: 'ConfigError', message: /widgets\[0\]\.segmentAttributes\.connect:Subtype/ })
  t.throws(() => parseWidgetFile(file({ segmentAttributes: { 'connect:Subtype': { ValueString: 'a', ValueInteger: 1 } } }), {}), /exactly one/)
  t.throws(() => parseWidgetFile(file({ segmentAttributes: { 'connect:CustomerAuthentication': { ValueString: 'AUTHENTICATED' } } }), {}), /set by the gateway/)
  t.throws(() => parseWidgetFile(file({ disconnectOnCustomerExit: ['CUSTOMER'] }), {}), /disconnectOnCustomerExit/)
  t.throws(() => parseWidgetFile(file({ responseMode: 'STREAM' }), {}), /responseMode/)
  t.throws(() => parseWidgetFile(file({ claimAttributes: { tier: 'bad key' } }), {}), /claimAttributes/)
  t.throws(() => parseWidgetFile(file({ segmentAttributes: { k: { ValueList: [{ ValueString: 'a' }, { ValueInteger: 'x' }] } } }), {}), /segmentAttributes\.k\.ValueList\[1\]\.ValueInteger/)
  t.throws(() => parseWidgetFile(file({ segmentAttributes: { k: { ValueMap: { 'bad key': { ValueString: 'a' } } } } }), {}), /ValueMap\.bad key: not a valid key/)
  t.throws(() => parseWidgetFile(file({ segmentAttributes: { k: { ValueList: [{ ValueList: [{ ValueList: [{ ValueList: [] }] }] }] } } }), {}), /nested at most 4 deep/)
  t.doesNotThrow(() => parseWidgetFile(file({ segmentAttributes: { k: { ValueList: [{ ValueArn: 'arn:aws:x' }, { ValueMap: { a: { ValueInteger: 1 } } }] } } }), {}))
  const [spec] = parseWidgetFile(file({ segmentAttributes: { 'connect:ContactExpiry': { ValueMap: { ExpiryDuration: { ValueInteger: 135 } } } } }), {})
  t.same(spec!.contactFields, { segmentAttributes: { 'connect:ContactExpiry': { ValueMap: { ExpiryDuration: { ValueInteger: 135 } } } }, claimAttributes: {}, customerIdClaim: 'sub' })
  t.equal(spec!.relatedChats, false)
})

t.test('the environment\'s shapes stop start-up, naming the setting', async (t) => {
  const env = (extra: Record<string, string>) => () => loadConfig({ NODE_ENV: 'development', CONNECT_SIMULATOR: 'true', ...extra })
  t.throws(env({ SEGMENT_ATTRIBUTES: '{not json' }), new ConfigError('SEGMENT_ATTRIBUTES: not valid JSON (e.g. {"connect:Subtype":{"ValueString":"connect:Guide"}})'))
  t.throws(env({ SEGMENT_ATTRIBUTES: '{"connect:Subtype":{"ValueString":""}}' }), { name: 'ConfigError', message: /SEGMENT_ATTRIBUTES\.connect:Subtype\.ValueString/ })
  t.throws(env({ CLAIM_ATTRIBUTES: 'tier' }), { name: 'ConfigError', message: /CLAIM_ATTRIBUTES: "tier"/ })
  t.throws(env({ RESPONSE_MODE: 'FAST' }), { name: 'ConfigError', message: /RESPONSE_MODE/ })
  t.throws(env({ DISCONNECT_ON_CUSTOMER_EXIT: 'CUSTOMER' }), { name: 'ConfigError', message: /DISCONNECT_ON_CUSTOMER_EXIT/ })
  const config = loadConfig({ NODE_ENV: 'development', CONNECT_SIMULATOR: 'true', CLAIM_ATTRIBUTES: 'tier:customerTier, acct:accountNumber' })
  t.same(config.claimAttributes, { tier: 'customerTier', acct: 'accountNumber' })
  t.equal(config.CUSTOMER_ID_CLAIM, 'sub')
})

t.test('the OpenAPI document shows which fields a client may never send, and the relatedToken answer', async (t) => {
  const { app } = await build(t)
  const doc = (await app.inject('/docs/json')).json()
  const op = doc.paths['/chat/start'].post
  const body = op.requestBody.content['application/json'].schema.properties
  for (const field of ['SegmentAttributes', 'CustomerId', 'RelatedContactId', 'DisconnectOnCustomerExit']) {
    t.match(body[field], { not: {}, description: /never accepted from a client/ }, field)
  }
  t.match(body.ParticipantConfiguration.properties.ResponseMode, { enum: ['COMPLETE', 'INCREMENTAL'] })
  t.ok(op.responses['200'].content['application/json'].schema.properties.data.properties.relatedToken)
})
