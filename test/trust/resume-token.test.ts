import t from 'tap'
import { decodeJwt, decodeProtectedHeader, jwtVerify, SignJWT } from 'jose'
import { ResumeTokens } from '../../src/trust/resume-token.js'
import { ResumeTokenRefused } from '../../src/errors.js'

const key = (c: string) => new TextEncoder().encode(c.repeat(32))
const DAY = 86_400

t.test('issue then verify round-trips the contact and the initial contact of its chain', async (t) => {
  const tokens = new ResumeTokens({ keys: [key('a')], ttlSeconds: DAY })
  t.same(await tokens.verify(await tokens.issue({ contactId: 'c1', initialContactId: 'c1' })), { contactId: 'c1', initialContactId: 'c1' })
  t.same(await tokens.verify(await tokens.issue({ contactId: 'c2', initialContactId: 'c1' })), { contactId: 'c2', initialContactId: 'c1' })
})

t.test('the token binds contact, issue time and expiry, signed HS256 with our own typ', async (t) => {
  let now = 1_700_000_000_000
  const tokens = new ResumeTokens({ keys: [key('a')], ttlSeconds: 3600, now: () => now })
  const token = await tokens.issue({ contactId: 'c1', initialContactId: 'c0' })
  t.same(decodeProtectedHeader(token), { alg: 'HS256', typ: 'ccg-resume+jwt' })
  t.same(decodeJwt(token), { sub: 'c1', ini: 'c0', iat: 1_700_000_000, exp: 1_700_003_600 })
  now += 3_599_000
  t.equal((await tokens.verify(token)).contactId, 'c1', 'valid until the TTL')
  now += 1_000
  await t.rejects(tokens.verify(token), { code: 'RESUME_TOKEN_REFUSED', message: /expired/ }, 'expired at the TTL')
})

t.test('rotation: the first key signs, every key verifies; a key rotated out no longer verifies', async (t) => {
  const old = new ResumeTokens({ keys: [key('a')], ttlSeconds: DAY })
  const rotating = new ResumeTokens({ keys: [key('b'), key('a')], ttlSeconds: DAY })
  const rotated = new ResumeTokens({ keys: [key('b')], ttlSeconds: DAY })
  const oldToken = await old.issue({ contactId: 'c1', initialContactId: 'c1' })
  const newToken = await rotating.issue({ contactId: 'c2', initialContactId: 'c2' })
  t.equal((await rotating.verify(oldToken)).contactId, 'c1')
  t.equal((await rotated.verify(newToken)).contactId, 'c2', 'new tokens are signed with the first key')
  await t.rejects(rotated.verify(oldToken), ResumeTokenRefused)
  await t.rejects(old.verify(newToken), ResumeTokenRefused)
})

t.test('tampered, foreign, malformed and look-alike tokens are refused', async (t) => {
  const tokens = new ResumeTokens({ keys: [key('a')], ttlSeconds: DAY })
  const token = await tokens.issue({ contactId: 'c1', initialContactId: 'c1' })
  const [h, , s] = token.split('.')
  const forgedPayload = Buffer.from(JSON.stringify({ ...decodeJwt(token), sub: 'someone-else' })).toString('base64url')
  const secret = key('a')
  const bad = {
    'payload swapped': `${h}.${forgedPayload}.${s}`,
    'signature flipped': token.slice(0, -2) + (token.endsWith('A') ? 'BB' : 'AA'),
    'another deployment': await new ResumeTokens({ keys: [key('z')], ttlSeconds: DAY }).issue({ contactId: 'c1', initialContactId: 'c1' }),
    'not a JWS': 'c1',
    'our key, other typ (e.g. a customer token)': await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('c1').setIssuedAt().setExpirationTime('1h').sign(secret),
    'our key and typ, no expiry': await new SignJWT({}).setProtectedHeader({ alg: 'HS256', typ: 'ccg-resume+jwt' }).setSubject('c1').setIssuedAt().sign(secret),
    'our key and typ, ini not a string': await new SignJWT({ ini: 7 }).setProtectedHeader({ alg: 'HS256', typ: 'ccg-resume+jwt' }).setSubject('c1').setIssuedAt().setExpirationTime('1h').sign(secret),
    'alg none': `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'ccg-resume+jwt' })).toString('base64url')}.${token.split('.')[1]}.`
  }
  for (const [name, value] of Object.entries(bad)) {
    await t.rejects(tokens.verify(value), { code: 'RESUME_TOKEN_REFUSED', message: /not valid/ }, name)
  }
})

t.test('at least one key is required', async (t) => {
  t.throws(() => new ResumeTokens({ keys: [], ttlSeconds: DAY }), TypeError)
})

t.test('our signing and jose agree: same bytes for the same claims, and jose verifies what we sign', async (t) => {
  const now = 1_700_000_000_000
  const secret = key('a')
  const tokens = new ResumeTokens({ keys: [secret], ttlSeconds: 3600, now: () => now })
  const cases = [
    { claims: { contactId: 'c1', initialContactId: 'c1' }, payload: {} },
    { claims: { contactId: 'c2', initialContactId: 'c0', customer: 'cust-7', unverifiedSource: true }, payload: { ini: 'c0', cus: 'cust-7', unv: true } },
    { claims: { contactId: 'ünïcode-✓', initialContactId: 'ünïcode-✓' }, payload: {} }
  ]
  for (const { claims, payload } of cases) {
    const ours = await tokens.issue(claims)
    const joses = await new SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: 'ccg-resume+jwt' })
      .setSubject(claims.contactId).setIssuedAt(now / 1000).setExpirationTime(now / 1000 + 3600).sign(secret)
    t.equal(ours, joses, `${claims.contactId}: byte for byte`)
    const { payload: verified, protectedHeader } = await jwtVerify(ours, secret, { algorithms: ['HS256'], typ: 'ccg-resume+jwt', currentDate: new Date(now) })
    t.same(protectedHeader, { alg: 'HS256', typ: 'ccg-resume+jwt' })
    t.same(verified, { ...payload, sub: claims.contactId, iat: now / 1000, exp: now / 1000 + 3600 })
  }
})
