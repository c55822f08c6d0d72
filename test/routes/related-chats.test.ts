import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { build, ORIGIN, startChat, validBody } from '../helper.js'
import { CUSTOMER_SECRET, mint, secretBytes } from '../trust/tokens.js'

// A related chat ("continue from this contact, as a new contact") starts only from the token the
// gateway handed out with the earlier chat: Connect copies that contact's attributes into the new one.

const related = { RELATED_CHATS: 'true', CUSTOMER_JWT_SECRET: CUSTOMER_SECRET }
const bearer = async (sub: string) => ({ authorization: `Bearer ${await mint({ sub }, secretBytes())}` })

async function first (app: Awaited<ReturnType<typeof build>>['app'], headers: Record<string, string> = {}) {
  const res = await startChat(app, validBody({ Attributes: { topic: 'billing' } }), headers)
  t.equal(res.statusCode, 200)
  return res.json().data as { startChatResult: { ContactId: string }; relatedToken: string; resumeToken: string }
}

t.test('relatedToken -> RelatedContactId of that chat, and Connect copies its attributes into the new contact', async (t) => {
  const { app, sim } = await build(t, related)
  const earlier = await first(app)
  t.type(earlier.relatedToken, 'string')
  const res = await startChat(app, validBody({ RelatedContactToken: earlier.relatedToken, Attributes: { language: 'fr' } }))
  t.equal(res.statusCode, 200)
  t.equal(sim.requests[1]!.input.RelatedContactId, earlier.startChatResult.ContactId)
  const contact = sim.contacts.get(res.json().data.startChatResult.ContactId)!
  t.equal(contact.relatedContactId, earlier.startChatResult.ContactId)
  t.same(contact.attributes, { topic: 'billing', language: 'fr' })
  t.type(res.json().data.relatedToken, 'string', 'the related chat has a token of its own')
})

t.test('a related-chat token opens one chat: a second use and concurrent uses are refused, Connect called once', async (t) => {
  const { app, sim } = await build(t, related)
  const { relatedToken } = await first(app)
  const both = await Promise.all([1, 2].map(() => startChat(app, validBody({ RelatedContactToken: relatedToken }))))
  t.same(both.map((r) => r.statusCode).sort(), [200, 403])
  const again = await startChat(app, validBody({ RelatedContactToken: relatedToken }))
  t.equal(again.statusCode, 403)
  t.equal(again.json().code, 'RELATED_TOKEN_REFUSED')
  t.equal(sim.requests.length, 2, 'the first chat and one related chat')
})

t.test('a failed Connect call does not spend the token', async (t) => {
  const { app, sim } = await build(t, { ...related, CONNECT_MAX_ATTEMPTS: '1' })
  const { relatedToken } = await first(app)
  sim.script({ type: 'InternalServiceException' })
  t.equal((await startChat(app, validBody({ RelatedContactToken: relatedToken }))).statusCode, 502)
  t.equal((await startChat(app, validBody({ RelatedContactToken: relatedToken }))).statusCode, 200)
})

t.test('refused tokens -> 403 RELATED_TOKEN_REFUSED, Connect not called', async (t) => {
  const { app, sim } = await build(t, related)
  const { relatedToken, resumeToken } = await first(app)
  const [head, payload] = relatedToken.split('.')
  const forged = `${head}.${payload}.${'A'.repeat(43)}`
  for (const [what, token] of [['garbage', 'not-a-token'], ['forged signature', forged], ['a resume token', resumeToken]] as const) {
    const res = await startChat(app, validBody({ RelatedContactToken: token }))
    t.equal(res.statusCode, 403, what)
    t.equal(res.json().code, 'RELATED_TOKEN_REFUSED', what)
    t.notMatch(res.body, token, 'the token is not echoed')
  }
  t.equal(sim.requests.length, 1)
})

t.test('a token issued to a signed-in customer works only for that customer', async (t) => {
  const { app, sim } = await build(t, related)
  const { relatedToken } = await first(app, await bearer('cust-1'))
  for (const headers of [{}, await bearer('cust-2')]) {
    const res = await startChat(app, validBody({ RelatedContactToken: relatedToken }), headers)
    t.equal(res.statusCode, 403)
    t.match(res.json().message, /signed-in customer/)
  }
  const res = await startChat(app, validBody({ RelatedContactToken: relatedToken }), await bearer('cust-1'))
  t.equal(res.statusCode, 200)
  t.match(sim.requests.at(-1)!.input, { RelatedContactId: String, CustomerId: 'cust-1' })
})

t.test('with PersistentChat -> 400, and the token is still good afterwards', async (t) => {
  const { app, sim } = await build(t, related)
  const { relatedToken, resumeToken } = await first(app)
  const res = await startChat(app, validBody({ RelatedContactToken: relatedToken, PersistentChat: { RehydrationType: 'FROM_SEGMENT', ResumeToken: resumeToken } }))
  t.equal(res.statusCode, 400)
  t.match(res.json().details, [{ path: 'RelatedContactToken', message: /PersistentChat/ }])
  t.equal(sim.requests.length, 1)
  t.equal((await startChat(app, validBody({ RelatedContactToken: relatedToken }))).statusCode, 200)
})

t.test('without related chats: no relatedToken, and a RelatedContactToken is refused', async (t) => {
  const on = await build(t, related)
  const { relatedToken } = await first(on.app)
  const { app, sim } = await build(t, { RESUME_TOKEN_SECRET: 'x'.repeat(32) })
  const res = await startChat(app, validBody())
  t.notOk('relatedToken' in res.json().data)
  const refused = await startChat(app, validBody({ RelatedContactToken: relatedToken }))
  t.equal(refused.statusCode, 403)
  t.match(refused.json(), { code: 'RELATED_TOKEN_REFUSED', message: /turned off/ })
  t.equal(sim.requests.length, 1)
})

t.test('a token works only on the widget that issued it', async (t: Test) => {
  const path = `${t.testdir()}/widgets.json`
  const widget = (id: string) => ({ id, contactFlowId: `flow-${id}`, allowedOrigins: [ORIGIN], relatedChats: true })
  writeFileSync(path, JSON.stringify({ widgets: [widget('sales'), widget('support')] }))
  const { app, sim } = await build(t, { WIDGETS_FILE: path, RELATED_CHATS: 'true' })
  const on = (w: string, body: unknown) => app.inject({ method: 'POST', url: `/chat/start/${w}`, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) })
  const { relatedToken } = (await on('sales', validBody())).json().data
  for (const elsewhere of [on('support', validBody({ RelatedContactToken: relatedToken })), startChat(app, validBody({ RelatedContactToken: relatedToken }))]) {
    const res = await elsewhere
    t.equal(res.statusCode, 403)
    t.match(res.json().message, /another chat widget/)
  }
  t.equal((await on('sales', validBody({ RelatedContactToken: relatedToken }))).statusCode, 200)
  t.equal(sim.requests.length, 2)
})

t.test('the gateway\'s own tokens never pass as customer tokens, even when the secrets are the same', async (t) => {
  const { app, sim } = await build(t, { ...related, RESUME_TOKEN_SECRET: CUSTOMER_SECRET })
  const data = await first(app)
  for (const token of [data.relatedToken, data.resumeToken, (data as unknown as { endToken: string }).endToken]) {
    const res = await startChat(app, validBody(), { authorization: `Bearer ${token}` })
    t.equal(res.statusCode, 401)
  }
  t.equal(sim.requests.length, 1)
})
