import t from 'tap'
import type { App } from '../../src/app.js'
import { build, ORIGIN, validBody } from '../helper.js'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const QUOTA = { MAX_OPEN_CHATS_PER_CALLER: '1' }

const end = (app: App, payload: string, contentType = 'application/json', url = '/chat/end') =>
  app.inject({ method: 'POST', url, headers: { 'content-type': contentType, origin: ORIGIN }, payload })

async function started (app: App, url = '/chat/start') {
  const res = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json', origin: ORIGIN }, payload: JSON.stringify(validBody()) })
  return res.json().data as { startChatResult: { ContactId: string }; endToken: string }
}

t.test('POST /chat/end stops the chat on Connect, answers 204 and frees the caller\'s seat; again: 204', async (t) => {
  const { app, sim } = await build(t, QUOTA)
  const chat = await started(app)
  t.equal((await app.inject({ method: 'POST', url: '/chat/start', headers: { 'content-type': 'application/json', origin: ORIGIN }, payload: JSON.stringify(validBody()) })).statusCode, 429)
  const res = await end(app, JSON.stringify({ EndToken: chat.endToken }))
  t.equal(res.statusCode, 204)
  t.equal(res.headers['access-control-allow-origin'], ORIGIN)
  t.equal(sim.stats().stopped, 1, 'StopContact was called')
  t.ok((sim.contacts.get(chat.startChatResult.ContactId)?.endsAt ?? Infinity) <= Date.now(), 'the contact has ended on Connect')
  t.equal((await started(app)).startChatResult.ContactId.length > 0, true, 'the seat is free: a new chat starts')
  t.equal((await end(app, JSON.stringify({ EndToken: chat.endToken }))).statusCode, 204, 'ending an ended chat is not an error')
  t.equal(sim.stats().described, 1, 'only the refusal before the end asked Connect')
  const metrics = (await app.inject({ url: '/metrics' })).body
  t.match(metrics, /ccg_chats_ended_total\{outcome="stopped"\} 1/)
  t.match(metrics, /ccg_chats_ended_total\{outcome="already_ended"\} 1/)
})

t.test('navigator.sendBeacon\'s text/plain body is accepted', async (t) => {
  const { app, sim } = await build(t, QUOTA)
  const chat = await started(app)
  t.equal((await end(app, JSON.stringify({ EndToken: chat.endToken }), 'text/plain;charset=UTF-8')).statusCode, 204)
  t.equal(sim.stats().stopped, 1)
})

t.test('forged, malformed and foreign end tokens: 403 END_TOKEN_REFUSED, Connect not called', async (t) => {
  const { app, sim } = await build(t, QUOTA)
  const chat = await started(app)
  const [head, body, sig] = chat.endToken.split('.')
  const claims = JSON.parse(Buffer.from(body!, 'base64url').toString()) as Record<string, unknown>
  const other = Buffer.from(JSON.stringify({ ...claims, sub: 'someone-elses-contact' })).toString('base64url')
  for (const token of [`${head}.${other}.${sig}`, 'not-a-token', `${chat.endToken}x`]) {
    const res = await end(app, JSON.stringify({ EndToken: token }))
    t.equal(res.statusCode, 403)
    t.equal(res.json().code, 'END_TOKEN_REFUSED')
  }
  // A resume token is signed with the same key, but is not an end token.
  const resume = (await app.inject({ method: 'POST', url: '/chat/start', remoteAddress: '127.0.0.9', headers: { 'content-type': 'application/json', origin: ORIGIN }, payload: JSON.stringify(validBody()) })).json().data.resumeToken as string
  t.equal((await end(app, JSON.stringify({ EndToken: resume }))).json().code, 'END_TOKEN_REFUSED')
  t.equal((await end(app, JSON.stringify({ EndToken: chat.endToken, ContactId: 'x' }))).statusCode, 400, 'unknown fields refused')
  t.equal(sim.stats().stopped, 0)
})

t.test('an end token expires with its chat\'s duration', async (t) => {
  let now = Date.now()
  const { app, sim } = await build(t, QUOTA, { deps: { now: () => now } })
  const chat = await started(app)
  now += 181 * 60_000
  const res = await end(app, JSON.stringify({ EndToken: chat.endToken }))
  t.equal(res.statusCode, 403)
  t.match(res.json().message, /outlived/)
  t.equal(sim.stats().stopped, 0)
})

t.test('an end token works only on the widget that issued it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ccg-end-'))
  const file = join(dir, 'widgets.json')
  writeFileSync(file, JSON.stringify({ widgets: [{ id: 'sales', contactFlowId: 'flow-sales', allowedOrigins: [ORIGIN] }] }))
  const { app, sim } = await build(t, { ...QUOTA, WIDGETS_FILE: file })
  const sales = await started(app, '/chat/start/sales')
  const refused = await end(app, JSON.stringify({ EndToken: sales.endToken }))
  t.equal(refused.statusCode, 403, 'the default profile refuses a sales token')
  t.equal(refused.json().code, 'END_TOKEN_REFUSED')
  t.equal((await end(app, JSON.stringify({ EndToken: sales.endToken }), 'application/json', '/chat/end/sales')).statusCode, 204)
  t.equal(sim.stats().stopped, 1)
})
