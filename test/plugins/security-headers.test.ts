import t from 'tap'
import { build, ORIGIN, startChat, validBody } from '../helper.js'

// Security headers for a JSON API, body limit, no stack traces.

t.test('a chat start answer: JSON-API security headers, and no cache may keep the participant token', async (t) => {
  const { app } = await build(t)
  const res = await startChat(app, validBody(), { origin: ORIGIN })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal(res.headers['content-security-policy'], 'default-src \'none\';frame-ancestors \'none\'')
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.equal(res.headers['x-frame-options'], 'DENY')
  t.equal(res.headers['cross-origin-resource-policy'], 'same-origin')
  t.match(res.headers['strict-transport-security'], /max-age=\d+/)
  t.notOk(res.headers['x-powered-by'])
  // Headers that only steer a document or a long-gone browser are not sent on a JSON answer.
  for (const name of ['referrer-policy', 'cross-origin-opener-policy', 'origin-agent-cluster', 'x-xss-protection', 'x-dns-prefetch-control', 'x-download-options', 'x-permitted-cross-domain-policies']) {
    t.notOk(res.headers[name], name)
  }
})

t.test('errors thrown before routing (403 origin, 404) carry the security headers too', async (t) => {
  const { app } = await build(t)
  for (const res of [
    await startChat(app, validBody(), { origin: 'https://evil.example' }),
    await app.inject({ method: 'GET', url: '/no-such-page' })
  ]) {
    t.equal(res.headers['x-content-type-options'], 'nosniff')
    t.equal(res.headers['cache-control'], 'no-store')
  }
})

t.test('body over 16 KiB -> 413 in our shape; Connect not called', async (t) => {
  const { app, sim } = await build(t)
  const res = await startChat(app, JSON.stringify(validBody({ InitialMessage: { ContentType: 'text/plain', Content: 'x'.repeat(16 * 1024) } })))
  t.equal(res.statusCode, 413)
  t.same(Object.keys(res.json()).sort(), ['code', 'error', 'message', 'statusCode'])
  t.equal(res.json().code, 'BODY_TOO_LARGE')
  t.equal(sim.requests.length, 0)
})

t.test('an unexpected crash -> 500 without a stack trace or the error text', async (t) => {
  const { app } = await build(t, {}, {
    deps: {
      trust: {
        async customer () { throw new Error('secret internals at /srv/app.js:12') },
        async resolvePersistentChat () { return undefined },
        async issueResumeToken () { return undefined },
        async resolveRelatedChat () { return undefined },
        issueRelatedToken () { return undefined },
        async close () {}
      }
    }
  })
  const res = await startChat(app, validBody())
  t.equal(res.statusCode, 500)
  t.notMatch(res.body, /secret internals|app\.js|at |stack/)
})
