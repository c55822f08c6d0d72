import t from 'tap'
import { build, startChat, validBody } from '../helper.js'

t.test('valid start -> 200 with exactly the sample-client shape', async (t) => {
  const { app, sim } = await build(t)
  const res = await startChat(app, validBody())
  t.equal(res.statusCode, 200)
  const json = res.json()
  t.same(Object.keys(json), ['data'])
  t.same(Object.keys(json.data).sort(), ['endToken', 'featurePermissions', 'resumeToken', 'startChatResult'])
  t.same(Object.keys(json.data.startChatResult).sort(), ['ContactId', 'ParticipantId', 'ParticipantToken'])
  t.same(json.data.featurePermissions, { MESSAGING_MARKDOWN: true, ATTACHMENTS: false })
  const contact = sim.contacts.get(json.data.startChatResult.ContactId)
  t.ok(contact, 'the simulator created that contact')
  t.equal(json.data.startChatResult.ParticipantToken, contact?.participantToken)
  t.notMatch(res.body, /\$metadata|simulated-instance|simulated-contact-flow|requestId/)
})

t.test('instance and flow come from configuration; the sample clients\' override fields are ignored', async (t) => {
  const { app, sim } = await build(t, { CONNECT_INSTANCE_ID: 'inst-from-config', CONNECT_CONTACT_FLOW_ID: 'flow-from-config' })
  const res = await startChat(app, validBody({ InstanceId: 'attacker', ConnectInstanceId: 'attacker', ContactFlowId: 'attacker-flow', Username: 'x' }))
  t.equal(res.statusCode, 200)
  t.equal(sim.requests.length, 1)
  t.equal(sim.requests[0]?.input.InstanceId, 'inst-from-config')
  t.equal(sim.requests[0]?.input.ContactFlowId, 'flow-from-config')
  t.notOk('Username' in (sim.requests[0]?.input ?? {}))
})

t.test('feature permissions follow FEATURE_MARKDOWN and FEATURE_ATTACHMENTS', async (t) => {
  const { app } = await build(t, { FEATURE_MARKDOWN: 'false', FEATURE_ATTACHMENTS: 'true' })
  const res = await startChat(app, validBody())
  t.same(res.json().data.featurePermissions, { MESSAGING_MARKDOWN: false, ATTACHMENTS: true })
})

t.test('every optional field reaches Connect as sent; DisplayName is trimmed', async (t) => {
  const { app, sim } = await build(t)
  const body = {
    ParticipantDetails: { DisplayName: '  Ann Lee  ' },
    Attributes: { topic: 'billing', language: 'fr' },
    InitialMessage: { ContentType: 'text/markdown', Content: 'Hello **there**' },
    SupportedMessagingContentTypes: ['text/plain', 'text/markdown'],
    ChatDurationInMinutes: 120
  }
  const res = await startChat(app, body)
  t.equal(res.statusCode, 200)
  const input = sim.requests[0]?.input ?? {}
  t.same(input.ParticipantDetails, { DisplayName: 'Ann Lee' })
  t.same(input.Attributes, body.Attributes)
  t.same(input.InitialMessage, body.InitialMessage)
  t.same(input.SupportedMessagingContentTypes, body.SupportedMessagingContentTypes)
  t.equal(input.ChatDurationInMinutes, 120)
})

t.test('text/plain and form-urlencoded bodies holding JSON are parsed as JSON', async (t) => {
  const { app, sim } = await build(t)
  for (const type of ['text/plain;charset=UTF-8', 'application/x-www-form-urlencoded; charset=UTF-8', 'application/json']) {
    const res = await startChat(app, validBody(), { 'content-type': type })
    t.equal(res.statusCode, 200, type)
  }
  t.equal(sim.contacts.size, 3)
})

t.test('other content types -> 415, Connect not called', async (t) => {
  const { app, sim } = await build(t)
  for (const type of ['application/xml', 'multipart/form-data; boundary=x', 'image/png']) {
    const res = await startChat(app, validBody(), { 'content-type': type })
    t.equal(res.statusCode, 415, type)
    t.equal(res.json().code, 'UNSUPPORTED_MEDIA_TYPE')
  }
  t.equal(sim.requests.length, 0)
})

t.test('body over 16 KiB -> 413, Connect not called', async (t) => {
  const { app, sim } = await build(t)
  const res = await startChat(app, validBody({ InitialMessage: { ContentType: 'text/plain', Content: 'x'.repeat(16_400) } }))
  t.equal(res.statusCode, 413)
  t.equal(res.json().code, 'BODY_TOO_LARGE')
  t.equal(sim.requests.length, 0)
})

t.test('invalid JSON -> 400 INVALID_JSON in our error shape', async (t) => {
  const { app, sim } = await build(t)
  for (const [type, payload] of [['application/json', '{"ParticipantDetails":'], ['text/plain', 'not json'], ['application/json', '']] as const) {
    const res = await startChat(app, payload, { 'content-type': type })
    t.equal(res.statusCode, 400, `${type} ${JSON.stringify(payload)}`)
    t.same(Object.keys(res.json()).sort(), ['code', 'error', 'message', 'statusCode'])
    t.equal(res.json().code, 'INVALID_JSON')
  }
  t.equal(sim.requests.length, 0)
})

t.test('__proto__ and constructor.prototype keys are refused, never merged', async (t) => {
  const { app, sim } = await build(t)
  const res1 = await startChat(app, '{"ParticipantDetails":{"DisplayName":"a"},"__proto__":{"polluted":true}}')
  t.equal(res1.statusCode, 400)
  const res2 = await startChat(app, '{"ParticipantDetails":{"DisplayName":"a"},"constructor":{"prototype":{"polluted":true}}}')
  t.equal(res2.statusCode, 400)
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.equal(sim.requests.length, 0)
})

interface Case { name: string; body: unknown; path: string; headers?: Record<string, string> }
const invalid: Case[] = [
  { name: 'missing ParticipantDetails', body: {}, path: 'ParticipantDetails' },
  { name: 'missing DisplayName', body: { ParticipantDetails: {} }, path: 'ParticipantDetails.DisplayName' },
  { name: 'blank DisplayName', body: { ParticipantDetails: { DisplayName: '   ' } }, path: 'ParticipantDetails.DisplayName' },
  { name: 'empty DisplayName', body: { ParticipantDetails: { DisplayName: '' } }, path: 'ParticipantDetails.DisplayName' },
  { name: 'DisplayName over 256 after trim', body: { ParticipantDetails: { DisplayName: 'a'.repeat(257) } }, path: 'ParticipantDetails.DisplayName' },
  { name: 'DisplayName with a newline', body: { ParticipantDetails: { DisplayName: 'Ann\nBob' } }, path: 'ParticipantDetails.DisplayName' },
  { name: 'DisplayName with NUL', body: { ParticipantDetails: { DisplayName: 'Ann\u0000' } }, path: 'ParticipantDetails.DisplayName' },
  { name: 'DisplayName a number', body: { ParticipantDetails: { DisplayName: 42 } }, path: 'ParticipantDetails.DisplayName' },
  { name: 'unknown top-level field', body: validBody({ Foo: 1 }), path: 'Foo' },
  { name: 'unknown nested field', body: { ParticipantDetails: { DisplayName: 'a', Role: 'AGENT' } }, path: 'ParticipantDetails.Role' },
  { name: 'attribute not allowed', body: validBody({ Attributes: { isVip: 'true' } }), path: 'Attributes.isVip' },
  { name: 'attribute key with bad characters', body: validBody({ Attributes: { 'to pic': 'x' } }), path: 'Attributes.to pic' },
  { name: 'attribute value not a string', body: validBody({ Attributes: { topic: 1 } }), path: 'Attributes.topic' },
  { name: 'InitialMessage content type', body: validBody({ InitialMessage: { ContentType: 'text/html', Content: 'hi' } }), path: 'InitialMessage.ContentType' },
  { name: 'InitialMessage empty content', body: validBody({ InitialMessage: { ContentType: 'text/plain', Content: '' } }), path: 'InitialMessage.Content' },
  { name: 'SupportedMessagingContentTypes without text/plain', body: validBody({ SupportedMessagingContentTypes: ['text/markdown'] }), path: 'SupportedMessagingContentTypes' },
  { name: 'SupportedMessagingContentTypes unknown type', body: validBody({ SupportedMessagingContentTypes: ['text/plain', 'text/html'] }), path: 'SupportedMessagingContentTypes.1' },
  { name: 'ChatDurationInMinutes below 60', body: validBody({ ChatDurationInMinutes: 59 }), path: 'ChatDurationInMinutes' },
  { name: 'ChatDurationInMinutes above 10,080', body: validBody({ ChatDurationInMinutes: 10_081 }), path: 'ChatDurationInMinutes' },
  { name: 'ChatDurationInMinutes as a string', body: validBody({ ChatDurationInMinutes: '120' }), path: 'ChatDurationInMinutes' },
  { name: 'ChatDurationInMinutes fractional', body: validBody({ ChatDurationInMinutes: 60.5 }), path: 'ChatDurationInMinutes' },
  { name: 'PersistentChat bad RehydrationType', body: validBody({ PersistentChat: { RehydrationType: 'ALL', SourceContactId: 'c' } }), path: 'PersistentChat.RehydrationType' },
  { name: 'body is an array', body: [validBody()], path: '(body)' },
  { name: 'Idempotency-Key with bad characters', body: validBody(), headers: { 'idempotency-key': 'a b' }, path: 'Idempotency-Key' },
  { name: 'Idempotency-Key over 64', body: validBody(), headers: { 'idempotency-key': 'a'.repeat(65) }, path: 'Idempotency-Key' }
]

for (const c of invalid) {
  t.test(`${c.name} -> 400 naming ${c.path}, Connect not called`, async (t) => {
    const { app, sim } = await build(t)
    const res = await startChat(app, c.body, c.headers)
    t.equal(res.statusCode, 400)
    const json = res.json()
    t.equal(json.code, 'VALIDATION_FAILED')
    t.equal(json.error, 'Bad Request')
    t.ok(Array.isArray(json.details) && json.details.length > 0)
    t.ok(json.details.some((d: { path: string }) => d.path === c.path), `details name ${c.path}: ${JSON.stringify(json.details)}`)
    t.equal(sim.requests.length, 0)
  })
}

t.test('several problems are all listed, and the list is bounded', async (t) => {
  const { app } = await build(t)
  const extra: Record<string, number> = {}
  for (let i = 0; i < 50; i++) extra[`F${i}`] = i
  const res = await startChat(app, { ParticipantDetails: {}, ChatDurationInMinutes: 1, ...extra })
  const details = res.json().details as Array<{ path: string }>
  t.ok(details.some((d) => d.path === 'ParticipantDetails.DisplayName'))
  t.ok(details.some((d) => d.path === 'ChatDurationInMinutes'))
  t.ok(details.length <= 20, `bounded (${details.length})`)
})

t.test('a display name is never echoed in an error body', async (t) => {
  const { app } = await build(t)
  const res = await startChat(app, { ParticipantDetails: { DisplayName: 'Secret Name\u0001' }, Attributes: { isVip: 'Secret Value' } })
  t.equal(res.statusCode, 400)
  t.notMatch(res.body, /Secret/)
})

t.test('unknown route -> 404 in our error shape', async (t) => {
  const { app } = await build(t)
  const res = await app.inject({ method: 'GET', url: '/nope?token=abc' })
  t.equal(res.statusCode, 404)
  t.equal(res.json().code, 'NOT_FOUND')
  t.notMatch(res.body, /token=abc/)
})
