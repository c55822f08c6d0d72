import { ConnectClient, StartChatContactCommand } from '@aws-sdk/client-connect'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SignJWT } from 'jose'
import pino from 'pino'
import t, { type Test } from 'tap'
import { trustSettings } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { startSimulator } from '@connect-chat-gateway/simulator'
import { UpstreamFailed } from '../src/errors.js'
import { loggerOptions, serializeError } from '../src/logger.js'
import { createTrustPolicy } from '../src/trust/index.js'
import { build, ORIGIN, startChat } from './helper.js'

// ParticipantToken, DisplayName, attributes, message content, Authorization and cookies are
// never logged. Every test logs at trace, so nothing hides behind the level.

const NAME = 'Zelda Secretname'
const JWT_SECRET = 'customer-jwt-secret-for-logging-tests-0123456789'
const secretBody = () => ({
  ParticipantDetails: { DisplayName: NAME },
  Attributes: { topic: 'Attr-Secret' },
  InitialMessage: { ContentType: 'text/plain', Content: 'Message-Secret' }
})
/** Connect's validation messages quote the refused value back. */
const quoting = `1 validation error detected: Value '${NAME}' at 'participantDetails.displayName' failed to satisfy constraint`
const FORBIDDEN = [NAME, 'Zelda', 'Attr-Secret', 'Jwt-Attr-Secret', 'Message-Secret', 'Cookie-Secret', 'Idem-Secret']

function assertClean (t: Test, logs: string, extra: string[] = []) {
  for (const secret of [...FORBIDDEN, ...extra]) t.notOk(logs.includes(secret), `log does not contain ${secret.slice(0, 24)}`)
}

async function customerToken () {
  return new SignJWT({ attributes: { customerTier: 'Jwt-Attr-Secret' } })
    .setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(JWT_SECRET))
}

t.test('after a chat start: no token, name, attribute, message, Authorization or cookie in the log', async (t) => {
  const { app, logs } = await build(t, { LOG_LEVEL: 'trace', CUSTOMER_JWT_SECRET: JWT_SECRET })
  const jwt = await customerToken()
  const res = await startChat(app, secretBody(), {
    origin: ORIGIN,
    authorization: `Bearer ${jwt}`,
    cookie: 'sid=Cookie-Secret',
    'idempotency-key': 'Idem-Secret-1-0123456789'
  })
  t.equal(res.statusCode, 200)
  const { startChatResult, resumeToken } = res.json().data
  t.match(logs(), startChatResult.ContactId, 'the contact id is logged, so the log is not simply empty')
  assertClean(t, logs(), [startChatResult.ParticipantToken, jwt, ...(resumeToken ? [resumeToken] : [])])
})

t.test('after upstream errors: Connect\'s words, which quote the input, stay out of the log', async (t) => {
  const { app, sim, logs } = await build(t, { LOG_LEVEL: 'trace' })
  sim.script({ type: 'InvalidParameterException', message: quoting })
  t.equal((await startChat(app, secretBody())).statusCode, 502)
  sim.script(...Array(3).fill({ type: 'InternalServiceException', message: quoting }))
  t.equal((await startChat(app, secretBody())).statusCode, 502)
  sim.script({ type: 'LimitExceededException', message: quoting })
  t.equal((await startChat(app, secretBody())).statusCode, 503)
  t.match(logs(), sim.requests[0]!.requestId, 'the upstream request id is logged')
  assertClean(t, logs())
})

/** A real SDK exception, parsed by the SDK from the simulator's answer, with $response and $metadata. */
async function realSdkError (t: Test): Promise<Error> {
  const sim = await startSimulator()
  t.teardown(() => sim.close())
  const client = new ConnectClient({ region: 'us-east-1', endpoint: sim.url, maxAttempts: 1, credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret' } })
  t.teardown(() => client.destroy())
  sim.script({ type: 'InvalidParameterException', message: quoting })
  const error = await client.send(new StartChatContactCommand({
    InstanceId: 'i', ContactFlowId: 'f', ParticipantDetails: { DisplayName: NAME }, Attributes: { topic: 'Attr-Secret' }
  })).catch((err: Error) => err)
  t.ok(error instanceof Error && error.message.includes(NAME), 'the SDK error itself does quote the name')
  t.ok('$response' in (error as object) && '$metadata' in (error as object))
  return error as Error
}

t.test('an unexpected 500 whose cause is an SDK error logs names, ids and stack, not the upstream message', async (t) => {
  const sdkError = await realSdkError(t)
  const config = loadConfig({ NODE_ENV: 'development', CONNECT_SIMULATOR: 'true' })
  const real = createTrustPolicy(trustSettings(config))
  const trust = {
    ...real,
    close: () => real.close(),
    customer: async () => { throw new Error('trust store failed', { cause: sdkError }) }
  }
  const { app, logs } = await build(t, { LOG_LEVEL: 'trace' }, { deps: { trust } })
  const res = await startChat(app, secretBody())
  t.equal(res.statusCode, 500)
  const line = logs().split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((l) => l.err)
  t.match(line, {
    level: 50,
    err: {
      type: 'Error',
      message: 'trust store failed',
      stack: /trust store failed/,
      cause: { type: 'InvalidParameterException', httpStatusCode: 400, requestId: /\S+/ }
    }
  })
  t.notOk(JSON.stringify(line).includes('$response'), 'no raw HTTP response')
  assertClean(t, logs())
})

t.test('the logger itself: SDK errors under err, error or nested, and headers under any name, are censored', async (t) => {
  const sdkError = await realSdkError(t)
  const chunks: string[] = []
  const stream = { write (chunk: string) { chunks.push(chunk); return true } } as unknown as NodeJS.WritableStream
  const log = pino(loggerOptions({ level: 'trace', pretty: false }, stream) as pino.LoggerOptions, stream as pino.DestinationStream)
  log.error({ err: sdkError }, 'direct')
  log.error({ error: sdkError }, 'under error')
  log.error({ err: new UpstreamFailed('ours', { cause: sdkError }) }, 'wrapped')
  log.warn({ headers: { authorization: 'Bearer Auth-Secret', cookie: 'Cookie-Secret' } }, 'headers')
  log.warn({ req: { headers: { Authorization: 'Auth-Secret', 'set-cookie': 'Cookie-Secret' } } }, 'nested headers')
  log.warn({ input: { ParticipantDetails: { DisplayName: NAME } }, contact: { Attributes: { topic: 'Attr-Secret' } } }, 'input')
  const out = chunks.join('')
  t.equal(out.split('\n').filter(Boolean).length, 6)
  t.match(out, 'InvalidParameterException')
  assertClean(t, out, ['Auth-Secret'])
})

t.test('serializeError keeps what our own errors say and survives odd values', async (t) => {
  t.match(serializeError(new UpstreamFailed('The chat service is not available', { upstream: { errorName: 'X', requestId: 'r-1' } })), {
    type: 'UpstreamFailed', message: 'The chat service is not available', code: 'UPSTREAM_FAILED', statusCode: 502, upstream: { requestId: 'r-1' }
  })
  t.match(serializeError('just a string'), { type: 'string', message: 'just a string' })
  const loop: Error & { cause?: unknown } = new Error('loop')
  loop.cause = loop
  t.ok(JSON.stringify(serializeError(loop)), 'a cause cycle ends')
})

t.test('errors that never reached Connect (endpoint refused) keep the SDK\'s message in the log line; the caller sees ours', async (t) => {
  const closed = createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const { port } = closed.address() as AddressInfo
  await new Promise<void>((resolve) => closed.close(() => resolve()))
  const { app, logs } = await build(t, { LOG_LEVEL: 'trace' }, {
    deps: { connectOverrides: { endpoint: `http://127.0.0.1:${port}`, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' } } }
  })
  const res = await startChat(app, secretBody())
  t.equal(res.statusCode, 502)
  t.same(res.json(), { statusCode: 502, error: 'Bad Gateway', code: 'UPSTREAM_FAILED', message: 'The chat service is not available right now' })
  const line = logs().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg?: string; upstream?: { message?: string } })
    .find((l) => l.msg === 'chat start failed upstream')
  t.match(line?.upstream?.message, `ECONNREFUSED 127.0.0.1:${port}`, 'what to fix: the endpoint refuses connections')
  assertClean(t, logs())
})
