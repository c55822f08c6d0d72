import t from 'tap'
import { connect } from 'node:net'
import { once } from 'node:events'
import { build, listenLocal, startChat, validBody } from '../helper.js'

// One renderer for every error answer: our shape, our words, the headers every answer carries.

t.test('validator wording never reaches the caller: every detail is in our own words', async (t) => {
  const { app } = await build(t)
  const bodies = [
    {}, { ParticipantDetails: { DisplayName: 42 } }, validBody({ ChatDurationInMinutes: 1 }), validBody({ ChatDurationInMinutes: 99_999 }),
    validBody({ SupportedMessagingContentTypes: ['text/markdown', 'text/markdown'] }), validBody({ SupportedMessagingContentTypes: [] }),
    validBody({ InitialMessage: { ContentType: 'text/plain', Content: '' } }), validBody({ Attributes: { 'bad key': 'x' } }),
    validBody({ PersistentChat: { RehydrationType: 'ALL' } }), { ParticipantDetails: { DisplayName: 'a\u0000' } }
  ]
  for (const body of bodies) {
    const res = await startChat(app, body, { 'idempotency-key': 'short' })
    t.equal(res.statusCode, 400)
    const { code, message, details } = res.json() as { code: string; message: string; details: Array<{ path: string; message: string }> }
    t.equal(code, 'VALIDATION_FAILED')
    t.equal(message, 'The request is not valid', 'one message for the code')
    for (const d of details) t.notMatch(d.message, /must match|must be equal|must NOT|must pass|should|property name|\^\[/, `${d.path}: ${d.message}`)
  }
  const route = await startChat(app, { ParticipantDetails: { DisplayName: '   ' } })
  t.equal(route.json().message, 'The request is not valid', 'the route\'s own checks use the same message')
})

t.test('a URL Fastify cannot decode -> 400 BAD_URL in our shape with our headers', async (t) => {
  const { app } = await build(t)
  const socket = connect(await listenLocal(app), '127.0.0.1')
  await once(socket, 'connect')
  let text = ''
  socket.setEncoding('utf8').on('data', (c: string) => { text += c })
  socket.end('GET /chat/%E0%A4%A HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n')
  await once(socket, 'close')
  t.match(text, /^HTTP\/1\.1 400 /)
  t.match(text, /cache-control: no-store/i)
  t.match(JSON.parse(text.split('\r\n\r\n')[1] ?? '{}'), { statusCode: 400, code: 'BAD_URL', message: 'The request URL is not valid' })
})

t.test('an unknown route -> 404 NOT_FOUND naming the method and path, without the query', async (t) => {
  const { app } = await build(t)
  const res = await app.inject({ method: 'GET', url: '/nowhere?secret=1' })
  t.equal(res.statusCode, 404)
  t.same(res.json(), { statusCode: 404, error: 'Not Found', code: 'NOT_FOUND', message: 'No route for GET /nowhere' })
})
