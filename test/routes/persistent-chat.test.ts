import t from 'tap'
import { SignJWT } from 'jose'
import { loadConfig } from '../../src/config.js'
import { build as buildApp, startChat, validBody } from '../helper.js'

// Many starts from one address per test: the per-client rate limit is not what these tests are about.
const build: typeof buildApp = (t, env = {}, options) => buildApp(t, { RATE_LIMIT_MAX: '10000', ...env }, options)

const SECRET_A = 'resume-key-a-'.padEnd(40, 'a')
const SECRET_B = 'resume-key-b-'.padEnd(40, 'b')
const signed = { RESUME_TOKEN_SECRET: SECRET_A }

const resume = (token: string, type: 'FROM_SEGMENT' | 'ENTIRE_PAST_SESSION' = 'FROM_SEGMENT') =>
  validBody({ PersistentChat: { RehydrationType: type, ResumeToken: token } })

t.test('every started chat returns data.resumeToken, opaque to the widget and never logged', async (t) => {
  const { app, logs } = await build(t, signed)
  const res = await startChat(app, validBody())
  t.equal(res.statusCode, 200)
  const token = res.json().data.resumeToken
  t.type(token, 'string')
  t.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/)
  t.notOk(logs().includes(token), 'the resume token is not in the log')
})

t.test('resume round trip: start, end, resume with the token -> Connect sees the first ContactId as source', async (t) => {
  const { app, sim } = await build(t, signed)
  const first = (await startChat(app, validBody())).json().data
  const firstId = first.startChatResult.ContactId
  sim.endChat(firstId)
  const res = await startChat(app, resume(first.resumeToken))
  t.equal(res.statusCode, 200)
  t.same(sim.requests[1]?.input.PersistentChat, { RehydrationType: 'FROM_SEGMENT', SourceContactId: firstId })
  const second = res.json().data
  t.equal(second.startChatResult.ContinuedFromContactId, firstId, 'ContinuedFromContactId is passed through')
  t.type(second.resumeToken, 'string', 'the continued chat gets its own resume token')
  t.not(second.resumeToken, first.resumeToken)
})

t.test('resume while the first chat is still active -> 409 SOURCE_CONTACT_REFUSED; after it ends -> 200', async (t) => {
  const { app, sim } = await build(t, signed)
  const first = (await startChat(app, validBody())).json().data
  const early = await startChat(app, resume(first.resumeToken))
  t.equal(early.statusCode, 409)
  t.equal(early.json().code, 'SOURCE_CONTACT_REFUSED')
  sim.endChat(first.startChatResult.ContactId)
  const later = await startChat(app, resume(first.resumeToken))
  t.equal(later.statusCode, 200)
  t.equal(later.json().data.startChatResult.ContinuedFromContactId, first.startChatResult.ContactId)
})

t.test('a chain: ENTIRE_PAST_SESSION from a continued chat uses the initial contact, FROM_SEGMENT the chat itself', async (t) => {
  const { app, sim } = await build(t, signed)
  const a = (await startChat(app, validBody())).json().data
  sim.endChat(a.startChatResult.ContactId)
  const b = (await startChat(app, resume(a.resumeToken))).json().data
  sim.endChat(b.startChatResult.ContactId)

  const whole = await startChat(app, resume(b.resumeToken, 'ENTIRE_PAST_SESSION'))
  t.equal(whole.statusCode, 200, 'Connect accepts the session\'s initial contact')
  t.same(sim.requests.at(-1)?.input.PersistentChat, { RehydrationType: 'ENTIRE_PAST_SESSION', SourceContactId: a.startChatResult.ContactId })
  const c = whole.json().data
  sim.endChat(c.startChatResult.ContactId)

  // Each token opens one continued chat, so the segment case continues c, the newest.
  const segment = await startChat(app, resume(c.resumeToken, 'FROM_SEGMENT'))
  t.equal(segment.statusCode, 200)
  t.same(sim.requests.at(-1)?.input.PersistentChat, { RehydrationType: 'FROM_SEGMENT', SourceContactId: c.startChatResult.ContactId })
  const d = segment.json().data
  sim.endChat(d.startChatResult.ContactId)

  // d continued a session that began at a: its token still knows the initial contact.
  const again = await startChat(app, resume(d.resumeToken, 'ENTIRE_PAST_SESSION'))
  t.equal(again.statusCode, 200)
  t.same(sim.requests.at(-1)?.input.PersistentChat, { RehydrationType: 'ENTIRE_PAST_SESSION', SourceContactId: a.startChatResult.ContactId })
})

t.test('refused with 403 RESUME_TOKEN_REFUSED before Connect: bare SourceContactId, tampered, foreign, look-alike', async (t) => {
  const { app, sim } = await build(t, signed)
  const first = (await startChat(app, validBody())).json().data
  const firstId = first.startChatResult.ContactId
  sim.endChat(firstId)
  const token: string = first.resumeToken
  const [h, p, s] = token.split('.') as [string, string, string]
  const other = (await startChat(app, validBody())).json().data.startChatResult.ContactId
  const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: other })).toString('base64url')
  const cases: Record<string, unknown> = {
    'bare SourceContactId': { RehydrationType: 'FROM_SEGMENT', SourceContactId: firstId },
    'no token at all': { RehydrationType: 'ENTIRE_PAST_SESSION' },
    'payload swapped to another contact': { RehydrationType: 'FROM_SEGMENT', ResumeToken: `${h}.${forged}.${s}` },
    'signature damaged': { RehydrationType: 'FROM_SEGMENT', ResumeToken: `${h}.${p}.${s.slice(0, -4)}AAAA` },
    'signed by another deployment': {
      RehydrationType: 'FROM_SEGMENT',
      ResumeToken: await new SignJWT({}).setProtectedHeader({ alg: 'HS256', typ: 'ccg-resume+jwt' }).setSubject(firstId).setIssuedAt().setExpirationTime('1h')
        .sign(new TextEncoder().encode(SECRET_B))
    },
    'our key but not a resume token': {
      RehydrationType: 'FROM_SEGMENT',
      ResumeToken: await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(firstId).setIssuedAt().setExpirationTime('1h')
        .sign(new TextEncoder().encode(SECRET_A))
    }
  }
  const before = sim.requests.length
  for (const [name, PersistentChat] of Object.entries(cases)) {
    const res = await startChat(app, validBody({ PersistentChat }))
    t.equal(res.statusCode, 403, name)
    t.equal(res.json().code, 'RESUME_TOKEN_REFUSED', name)
  }
  t.equal(sim.requests.length, before, 'Connect was never called')
})

t.test('a token and a SourceContactId together: the token decides', async (t) => {
  const { app, sim } = await build(t, signed)
  const first = (await startChat(app, validBody())).json().data
  sim.endChat(first.startChatResult.ContactId)
  const res = await startChat(app, validBody({
    PersistentChat: { RehydrationType: 'FROM_SEGMENT', ResumeToken: first.resumeToken, SourceContactId: 'someone-elses-contact' }
  }))
  t.equal(res.statusCode, 200)
  t.same(sim.requests.at(-1)?.input.PersistentChat, { RehydrationType: 'FROM_SEGMENT', SourceContactId: first.startChatResult.ContactId })
})

t.test('an expired resume token (RESUME_TOKEN_TTL=1s) -> 403 before Connect', async (t) => {
  // The tokens' clock is moved on instead of waiting for it.
  let ahead = 0
  const { app, sim } = await build(t, { ...signed, RESUME_TOKEN_TTL: '1s' }, { deps: { now: () => Date.now() + ahead } })
  const first = (await startChat(app, validBody())).json().data
  sim.endChat(first.startChatResult.ContactId)
  ahead = 2_100
  const res = await startChat(app, resume(first.resumeToken))
  t.equal(res.statusCode, 403)
  t.match(res.json(), { code: 'RESUME_TOKEN_REFUSED', message: /expired/ })
  t.equal(sim.requests.length, 1)
})

t.test('key rotation across replicas: "B,A" accepts tokens signed with A; once A is rotated out they are refused', async (t) => {
  const old = await build(t, { RESUME_TOKEN_SECRET: SECRET_A })
  const sameConnect = { connectOverrides: { endpoint: old.sim.url, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' } } }
  const rotating = await build(t, { RESUME_TOKEN_SECRET: `${SECRET_B},${SECRET_A}` }, { deps: sameConnect })
  const rotated = await build(t, { RESUME_TOKEN_SECRET: SECRET_B }, { deps: sameConnect })

  const first = (await startChat(old.app, validBody())).json().data
  old.sim.endChat(first.startChatResult.ContactId)
  const viaRotating = await startChat(rotating.app, resume(first.resumeToken))
  t.equal(viaRotating.statusCode, 200, 'a token from before the rotation still works')
  const second = viaRotating.json().data
  old.sim.endChat(second.startChatResult.ContactId)

  t.equal((await startChat(rotated.app, resume(first.resumeToken))).statusCode, 403, 'A rotated out: its tokens are refused')
  t.equal((await startChat(old.app, resume(second.resumeToken))).statusCode, 403, 'new tokens are signed with B, unknown to the old replica')
  t.equal((await startChat(rotated.app, resume(second.resumeToken))).statusCode, 200, 'and verify where B is configured')
})

t.test('without RESUME_TOKEN_SECRET: a random key, a warning, and tokens that do not work on another replica', async (t) => {
  const one = await build(t)
  const two = await build(t, {}, { deps: { connectOverrides: { endpoint: one.sim.url, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' } } } })
  t.match(one.logs(), /RESUME_TOKEN_SECRET is not set/)
  const first = (await startChat(one.app, validBody())).json().data
  one.sim.endChat(first.startChatResult.ContactId)
  t.equal((await startChat(two.app, resume(first.resumeToken))).statusCode, 403)
  t.equal((await startChat(one.app, resume(first.resumeToken))).statusCode, 200)
  const quiet = await build(t, signed)
  t.notMatch(quiet.logs(), /RESUME_TOKEN_SECRET/, 'no warning when a secret is set')
})

t.test('production with persistent chat verified and no RESUME_TOKEN_SECRET is a start-up error', async (t) => {
  t.throws(() => loadConfig({ CONNECT_SIMULATOR: 'true', NODE_ENV: 'production' }), /RESUME_TOKEN_SECRET/)
  t.ok(loadConfig({ CONNECT_SIMULATOR: 'true', NODE_ENV: 'production', ALLOWED_ORIGINS: 'none', PERSISTENT_CHAT: 'off' }))
  t.ok(loadConfig({ CONNECT_SIMULATOR: 'true', NODE_ENV: 'production', ALLOWED_ORIGINS: 'none', RESUME_TOKEN_SECRET: SECRET_A }))
})

t.test('PERSISTENT_CHAT=unverified: a bare SourceContactId is trusted (legacy clients); tokens still verified', async (t) => {
  const { app, sim } = await build(t, { ...signed, PERSISTENT_CHAT: 'unverified' })
  const first = (await startChat(app, validBody())).json().data
  const firstId = first.startChatResult.ContactId
  sim.endChat(firstId)
  const bare = await startChat(app, validBody({ PersistentChat: { RehydrationType: 'ENTIRE_PAST_SESSION', SourceContactId: firstId } }))
  t.equal(bare.statusCode, 200)
  t.same(sim.requests.at(-1)?.input.PersistentChat, { RehydrationType: 'ENTIRE_PAST_SESSION', SourceContactId: firstId })
  const second = bare.json().data
  t.type(second.resumeToken, 'string', 'tokens are issued so clients can move to them')
  sim.endChat(second.startChatResult.ContactId)

  const withToken = await startChat(app, resume(second.resumeToken, 'ENTIRE_PAST_SESSION'))
  t.equal(withToken.statusCode, 200)
  t.same(sim.requests.at(-1)?.input.PersistentChat, { RehydrationType: 'ENTIRE_PAST_SESSION', SourceContactId: firstId }, 'the chain\'s initial contact')
  const before = sim.requests.length
  const tampered = await startChat(app, resume(`${second.resumeToken}x`))
  t.equal(tampered.statusCode, 403, 'a token that fails verification is refused even here')
  t.equal(sim.requests.length, before)
})

t.test('PERSISTENT_CHAT=off: no resume tokens, and PersistentChat is refused with 403 before Connect', async (t) => {
  const { app, sim } = await build(t, { PERSISTENT_CHAT: 'off' })
  const first = await startChat(app, validBody())
  t.equal(first.statusCode, 200)
  t.notOk('resumeToken' in first.json().data)
  const firstId = first.json().data.startChatResult.ContactId
  sim.endChat(firstId)
  for (const PersistentChat of [{ RehydrationType: 'FROM_SEGMENT', SourceContactId: firstId }, { RehydrationType: 'FROM_SEGMENT', ResumeToken: 'x.y.z' }]) {
    const res = await startChat(app, validBody({ PersistentChat }))
    t.equal(res.statusCode, 403)
    t.equal(res.json().code, 'PERSISTENT_CHAT_DISABLED')
  }
  t.equal(sim.requests.length, 1)
  t.notMatch(first.body, /resumeToken/)
})
