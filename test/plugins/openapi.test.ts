import t from 'tap'
import { ChatStartBody, ChatStartReply, ErrorReply } from '../../src/routes/chat-start.schema.js'
import { build } from '../helper.js'

const PRODUCTION = { NODE_ENV: 'production', RESUME_TOKEN_SECRET: 'a-resume-token-secret-of-at-least-32-chars', ALLOWED_ORIGINS: 'https://shop.example.com' }

/** Only JSON Schema keywords: TypeBox's own markers must not leak into the document. */
const plain = (schema: unknown) => JSON.parse(JSON.stringify(schema))

t.test('GET /docs/json documents POST /chat/start with its request and response schemas', async (t) => {
  const { app } = await build(t)
  const res = await app.inject('/docs/json')
  t.equal(res.statusCode, 200)
  const doc = res.json()
  t.match(doc.openapi, /^3\./)
  t.match(doc.info, { title: 'connect-chat-gateway', version: /^\d+\.\d+\.\d+/ })

  const op = doc.paths['/chat/start']?.post
  t.ok(op, 'POST /chat/start is documented')
  const request = op.requestBody.content['application/json'].schema
  // The route's own TypeBox schema, in OpenAPI 3.0 dialect (const becomes enum, patternProperties additionalProperties).
  t.same(Object.keys(request.properties), Object.keys(ChatStartBody.properties), 'every request field, no more')
  t.same(request.required, ['ParticipantDetails'])
  t.equal(request.additionalProperties, false, 'unknown fields are documented as refused')
  t.same(request.properties.ParticipantDetails, plain(ChatStartBody.properties.ParticipantDetails))
  t.same(request.properties.InitialMessage, plain(ChatStartBody.properties.InitialMessage))
  t.same(op.responses['200'].content['application/json'].schema, plain(ChatStartReply), '200: the sample clients\' shape')
  for (const status of ['4XX', '5XX']) {
    t.same(op.responses[status]?.content['application/json'].schema, plain(ErrorReply), `${status}: our error shape`)
  }
  t.match(op.parameters, [{ in: 'header', name: 'idempotency-key' }])
})

t.test('the probes are documented; /metrics and the document itself are not', async (t) => {
  const { app } = await build(t)
  const doc = (await app.inject('/docs/json')).json()
  t.ok(doc.paths['/health/live']?.get)
  t.ok(doc.paths['/health/ready']?.get?.responses['503'], 'readiness documents its 503')
  t.notOk(doc.paths['/metrics'])
  t.notOk(Object.keys(doc.paths).some((p) => p.startsWith('/docs')))
})

t.test('development serves the UI at /docs', async (t) => {
  const { app } = await build(t)
  const res = await app.inject('/docs/')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /text\/html/)
})

t.test('production: neither the document nor the UI on the public port; the document is built for METRICS_PORT', async (t) => {
  const { app } = await build(t, PRODUCTION)
  for (const url of ['/docs/json', '/docs', '/docs/', '/docs/static/index.html', '/metrics']) {
    t.equal((await app.inject(url)).statusCode, 404, url)
  }
  t.ok((app.swagger() as { paths: Record<string, { post?: unknown }> }).paths['/chat/start']?.post, 'app.swagger() still documents POST /chat/start')
})
