/**
 * SECRET_IDS: the Lambda function reads its secrets from Secrets Manager while an environment
 * starts. The SDK talks over HTTP to a stand-in speaking Secrets Manager's protocol; Connect is the
 * simulator.
 */
import t, { type Test } from 'tap'
import { ConfigError } from '../../src/config.js'
import { withSecrets } from '../../src/lambda-secrets.js'
import type { LambdaDeps } from '../../src/lambda-handler.js'
import { mint, secretBytes } from '../trust/tokens.js'
import { environment, functionEnv, RESUME_SECRET, simulator, start } from './environment.js'
import { chatStartBody, httpApiEvent } from './events.js'
import { secretArn, startSecretsManager, type SecretsManagerStandIn } from './secrets-manager.js'

const CREDENTIALS = { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' }
const CUSTOMER_SECRET = 'customer-jwt-from-secrets-manager-0123456789'

/** The function's environment with RESUME_TOKEN_SECRET (and `more`) named in SECRET_IDS instead of set. */
function secretEnv (ids: Record<string, string>): Record<string, string> {
  const { RESUME_TOKEN_SECRET: _set, ...env } = functionEnv({ SECRET_IDS: JSON.stringify(ids) })
  return env
}

const secretsDeps = (sm: SecretsManagerStandIn, timeoutMs?: number): LambdaDeps =>
  ({ secrets: { overrides: { endpoint: sm.url, credentials: CREDENTIALS }, ...(timeoutMs ? { timeoutMs } : {}) } })

/** What the process writes on stderr (where a failed start is reported) while the test runs. */
function captureStderr (t: Test): () => string {
  const write = process.stderr.write
  const written: string[] = []
  process.stderr.write = ((chunk: string) => { written.push(String(chunk)); return true }) as typeof process.stderr.write
  t.teardown(() => { process.stderr.write = write })
  return () => written.join('')
}

t.test('RESUME_TOKEN_SECRET from Secrets Manager signs resume tokens that another environment, given the value, accepts', async (t) => {
  const sm = await startSecretsManager(t)
  sm.secrets.set('prod/chat/resume-token', { string: RESUME_SECRET })
  const sim = await simulator(t)
  const env = secretEnv({ RESUME_TOKEN_SECRET: secretArn('prod/chat/resume-token') })
  const a = environment(t, sim, env, secretsDeps(sm))
  const first = await start(a, '198.51.100.23')
  t.equal(first.statusCode, 200)
  t.same(sm.requests.map(({ target, secretId }) => ({ target, secretId })),
    [{ target: 'secretsmanager.GetSecretValue', secretId: secretArn('prod/chat/resume-token') }], 'one read, by ARN, at start')
  t.match(sm.requests[0]!.authorization, /^AWS4-HMAC-SHA256 Credential=AKIDTEST\/\d{8}\/eu-west-2\/secretsmanager\/aws4_request/, 'signed for the function\'s region')
  t.equal(env.RESUME_TOKEN_SECRET, undefined, 'the environment handed in is left as it was')
  await start(a, '198.51.100.23')
  t.equal(sm.requests.length, 1, 'read once per environment, not per invocation')

  const { resumeToken, startChatResult } = first.json().data
  sim.endChat(startChatResult.ContactId)
  const b = environment(t, sim, functionEnv())
  const resumed = await start(b, '198.51.100.23', { body: chatStartBody({ PersistentChat: { RehydrationType: 'ENTIRE_PAST_SESSION', ResumeToken: resumeToken } }) })
  t.equal(resumed.statusCode, 200, 'the token verifies with the same secret set directly')
  t.match(sim.requests.at(-1)!.input, { PersistentChat: { SourceContactId: startChatResult.ContactId } })
  t.notOk(a.logs().includes(RESUME_SECRET), 'the value is never logged')
})

t.test('two secrets are read at once; CUSTOMER_JWT_SECRET from Secrets Manager verifies customer tokens', async (t) => {
  const sm = await startSecretsManager(t)
  sm.secrets.set('prod/chat/resume-token', { string: RESUME_SECRET })
  sm.secrets.set('prod/chat/customer-jwt', { string: CUSTOMER_SECRET })
  sm.holdUntil = 2
  const sim = await simulator(t)
  const env = secretEnv({ RESUME_TOKEN_SECRET: 'prod/chat/resume-token', CUSTOMER_JWT_SECRET: 'prod/chat/customer-jwt' })
  const lambda = environment(t, sim, env, secretsDeps(sm))
  await lambda.handler.ready()
  t.equal(sm.requests.length, 2, 'both requests were waiting together before either was answered')
  const bearer = async (secret: string) => ({ authorization: `Bearer ${await mint({ sub: 'customer-7' }, secretBytes(secret))}` })
  t.equal((await start(lambda, '198.51.100.23', { headers: await bearer(CUSTOMER_SECRET) })).statusCode, 200)
  t.equal((await start(lambda, '198.51.100.23', { headers: await bearer('another-secret-of-forty-characters-00000') })).statusCode, 401)
  t.notOk(lambda.logs().includes(CUSTOMER_SECRET), 'the value is never logged')
})

t.test('a missing secret fails the start naming the variable and the id, never a value; the next invocation reads again', async (t) => {
  const sm = await startSecretsManager(t)
  sm.secrets.set('prod/chat/resume-token', { string: RESUME_SECRET })
  const sim = await simulator(t)
  const env = secretEnv({ RESUME_TOKEN_SECRET: 'prod/chat/resume-token', CUSTOMER_JWT_SECRET: 'prod/chat/customer-jwt' })
  const stderr = captureStderr(t)
  const lambda = environment(t, sim, env, secretsDeps(sm))
  const err = await lambda.handler(httpApiEvent()).then(() => undefined, (e: unknown) => e as Error)
  t.type(err, ConfigError)
  t.match(err?.message, 'SECRET_IDS: could not read CUSTOMER_JWT_SECRET (secret prod/chat/customer-jwt): ResourceNotFoundException')
  t.notMatch(err?.message, /RESUME_TOKEN_SECRET/, 'only the one that failed')
  t.match(stderr(), /connect-chat-gateway: SECRET_IDS: could not read CUSTOMER_JWT_SECRET \(secret prod\/chat\/customer-jwt\)/, 'reported in a sentence')
  for (const [where, text] of [['error', `${err?.message} ${err?.stack}`], ['stderr', stderr()], ['logs', lambda.logs()]]) {
    t.notOk(text!.includes(RESUME_SECRET), `no secret value in the ${where}`)
  }
  t.equal(sim.requests.length, 0, 'the app never started')

  sm.secrets.set('prod/chat/customer-jwt', { string: CUSTOMER_SECRET })
  t.equal((await start(lambda, '198.51.100.23')).statusCode, 200, 'created, the next invocation starts')
  t.equal(sm.requests.length, 4, 'both read again')
})

t.test('the SDK retries a failed read within one start', async (t) => {
  const sm = await startSecretsManager(t)
  sm.secrets.set('prod/chat/resume-token', { string: RESUME_SECRET })
  sm.faults.push('internal-error')
  const sim = await simulator(t)
  const lambda = environment(t, sim, secretEnv({ RESUME_TOKEN_SECRET: 'prod/chat/resume-token' }), secretsDeps(sm))
  t.equal((await start(lambda, '198.51.100.23')).statusCode, 200)
  t.equal(sm.requests.length, 2)
})

t.test('a Secrets Manager that never answers fails the start at the deadline, naming the variable', async (t) => {
  const sm = await startSecretsManager(t)
  sm.faults.push('hang', 'hang', 'hang')
  const sim = await simulator(t)
  captureStderr(t)
  const lambda = environment(t, sim, secretEnv({ RESUME_TOKEN_SECRET: 'prod/chat/resume-token' }), secretsDeps(sm, 300))
  await t.rejects(lambda.handler.ready(), { name: 'ConfigError', message: 'SECRET_IDS: could not read RESUME_TOKEN_SECRET (secret prod/chat/resume-token): no answer within 300 ms' })
})

t.test('a binary secret is refused, naming the variable', async (t) => {
  const sm = await startSecretsManager(t)
  sm.secrets.set('prod/chat/resume-token', { binary: Buffer.from(RESUME_SECRET) })
  const env = secretEnv({ RESUME_TOKEN_SECRET: 'prod/chat/resume-token' })
  await t.rejects(withSecrets(env, secretsDeps(sm).secrets), /RESUME_TOKEN_SECRET \(secret prod\/chat\/resume-token\): it holds no SecretString/)
})

t.test('AWS_ENDPOINT_URL_SECRETS_MANAGER points the SDK at another endpoint by itself', async (t) => {
  const sm = await startSecretsManager(t)
  sm.secrets.set('prod/chat/resume-token', { string: RESUME_SECRET })
  const before = process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER
  process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = sm.url
  t.teardown(() => {
    if (before === undefined) delete process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER
    else process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = before
  })
  const env = await withSecrets(secretEnv({ RESUME_TOKEN_SECRET: 'prod/chat/resume-token' }), { overrides: { credentials: CREDENTIALS } })
  t.equal(env.RESUME_TOKEN_SECRET, RESUME_SECRET)
  t.equal(sm.requests.length, 1)
})

t.test('refused before any read: malformed SECRET_IDS, or a variable also set directly', async (t) => {
  const sm = await startSecretsManager(t)
  const deps = secretsDeps(sm).secrets
  const cases: Array<[string, string, RegExp]> = [
    ['not JSON (the value pasted in by mistake)', '{"RESUME_TOKEN_SECRET": hunter2-pasted-value}', /^SECRET_IDS: not JSON/],
    ['an array', '["prod/chat/resume-token"]', /^SECRET_IDS: expected an object .* not an array/],
    ['a string', '"prod/chat/resume-token"', /^SECRET_IDS: expected an object .* not a string/],
    ['a lower-case name', '{"resume_token_secret":"prod/chat/resume-token"}', /^SECRET_IDS: "resume_token_secret" is not a variable name/],
    ['a name with a dash', '{"ACME-JWT":"prod/chat/acme"}', /^SECRET_IDS: "ACME-JWT" is not a variable name/],
    ['an empty id', '{"RESUME_TOKEN_SECRET":"  "}', /^SECRET_IDS: RESUME_TOKEN_SECRET must map to a non-empty secret id/],
    ['an id that is not a string', '{"RESUME_TOKEN_SECRET":{"id":"hunter2-pasted-value"}}', /^SECRET_IDS: RESUME_TOKEN_SECRET must map to a non-empty secret id/]
  ]
  for (const [name, ids, message] of cases) {
    const err = await withSecrets({ ...functionEnv(), RESUME_TOKEN_SECRET: undefined, SECRET_IDS: ids }, deps).then(() => undefined, (e: unknown) => e as Error)
    t.type(err, ConfigError, name)
    t.match(err?.message, message, name)
    t.notMatch(err?.message, /hunter2/, `${name}: no value echoed`)
  }
  const both = await withSecrets(functionEnv({ SECRET_IDS: '{"RESUME_TOKEN_SECRET":"prod/chat/resume-token"}' }), deps).then(() => undefined, (e: unknown) => e as Error)
  t.type(both, ConfigError)
  t.match(both?.message, /^SECRET_IDS: RESUME_TOKEN_SECRET is also set in the environment/, 'set directly and through SECRET_IDS: ambiguous')
  t.notMatch(both?.message, RESUME_SECRET)
  const two = await withSecrets(functionEnv({ CUSTOMER_JWT_SECRET: CUSTOMER_SECRET, SECRET_IDS: '{"RESUME_TOKEN_SECRET":"a","CUSTOMER_JWT_SECRET":"b"}' }), deps)
    .then(() => undefined, (e: unknown) => e as Error)
  t.match(two?.message, /^SECRET_IDS: RESUME_TOKEN_SECRET, CUSTOMER_JWT_SECRET are also set/, 'each ambiguous name')
  t.equal(sm.requests.length, 0, 'Secrets Manager never asked')

  const sim = await simulator(t)
  captureStderr(t)
  const lambda = environment(t, sim, functionEnv({ SECRET_IDS: '[]' }), secretsDeps(sm))
  await t.rejects(lambda.handler(httpApiEvent()), /SECRET_IDS: expected an object/, 'a handler\'s start fails on it')
})

t.test('without SECRET_IDS the environment is used as it is, and nothing is read', async (t) => {
  const env = functionEnv()
  t.equal(await withSecrets(env), env)
  t.equal(await withSecrets({ ...env, SECRET_IDS: '' }).then((e) => e.RESUME_TOKEN_SECRET), RESUME_SECRET)
  t.equal((await withSecrets({ ...env, SECRET_IDS: '{}' })).RESUME_TOKEN_SECRET, RESUME_SECRET, 'an empty map reads nothing')
})
