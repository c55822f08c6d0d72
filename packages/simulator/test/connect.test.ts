/**
 * The Connect simulator over real HTTP: raw fetch for what the SDK never sends (missing
 * signatures, bad JSON, out-of-range fields) and the real ConnectClient for everything the
 * gateway relies on (success parsing, exception classes, request ids, Retry-After).
 */
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import {
  ConnectClient,
  ConnectServiceException,
  StartChatContactCommand,
  type StartChatContactCommandInput
} from '@aws-sdk/client-connect'
import {
  ERROR_FAULT_TYPES,
  startSimulator,
  type ConnectSimulator,
  type SimulatorOptions
} from '../src/connect.js'
import { fakeClock } from './fake-clock.js'

const BASE_INPUT: StartChatContactCommandInput = {
  InstanceId: 'instance-1',
  ContactFlowId: 'flow-1',
  ParticipantDetails: { DisplayName: 'Ada' }
}

/** A well-formed SigV4 header; the simulator checks its shape, not the signature. */
const SIGV4 =
  'AWS4-HMAC-SHA256 Credential=AKIDTEST/20250101/us-east-1/connect/aws4_request, ' +
  `SignedHeaders=host;x-amz-date, Signature=${'ab'.repeat(32)}`

function makeClient (sim: ConnectSimulator, maxAttempts = 1): ConnectClient {
  return new ConnectClient({
    endpoint: sim.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' },
    maxAttempts
  })
}

/** A simulator and an SDK client, both closed when the test ends. */
async function setup (t: Test, options: SimulatorOptions = {}): Promise<{ sim: ConnectSimulator; client: ConnectClient }> {
  const sim = await startSimulator(options)
  const client = makeClient(sim)
  t.teardown(async () => {
    client.destroy()
    await sim.close()
  })
  return { sim, client }
}

function start (client: ConnectClient, input: Partial<StartChatContactCommandInput> = {}) {
  return client.send(new StartChatContactCommand({ ...BASE_INPUT, ...input }))
}

/** The rejection of a call that must fail. */
async function failure (promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (err) {
    return err
  }
  throw new Error('expected the call to fail')
}

async function serviceError (promise: Promise<unknown>): Promise<ConnectServiceException> {
  const err = await failure(promise)
  if (err instanceof ConnectServiceException) return err
  throw err
}

function put (sim: ConnectSimulator, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${sim.url}/contact/chat`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: SIGV4, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body)
  })
}

/** Asserts the Connect error envelope and returns the message. */
async function expectApiError (t: Test, res: Response, status: number, errorType: string): Promise<string> {
  t.equal(res.status, status, `status ${status}`)
  t.equal(res.headers.get('x-amzn-errortype'), errorType)
  t.equal(res.headers.get('content-type'), 'application/json')
  t.match(res.headers.get('x-amzn-requestid'), /^[0-9a-f-]{36}$/)
  const body = (await res.json()) as { Message: string }
  t.type(body.Message, 'string')
  return body.Message
}

async function waitFor (condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

t.test('StartChatContact succeeds through the real SDK and is recorded', async (t) => {
  const { sim, client } = await setup(t)
  const out = await start(client, {
    Attributes: { customerId: '42' },
    InitialMessage: { ContentType: 'text/plain', Content: 'hello' }
  })
  t.match(out.ContactId, /^[0-9a-f-]{36}$/)
  t.match(out.ParticipantId, /^[0-9a-f-]{36}$/)
  t.ok((out.ParticipantToken ?? '').length >= 200, 'participant token is long and opaque')
  t.equal(out.ContinuedFromContactId, undefined)

  t.equal(sim.requests.length, 1)
  const [request] = sim.requests
  t.equal(out.$metadata.requestId, request?.requestId, 'SDK sees the x-amzn-requestid')
  t.equal(request?.status, 200)
  t.match(request?.authorization, /^AWS4-HMAC-SHA256 Credential=AKIDTEST\/\d{8}\/us-east-1\/connect\/aws4_request/)
  t.match(request?.clientToken, /^[0-9a-f-]{36}$/, 'the SDK fills ClientToken itself')
  t.same(request?.input.Attributes, { customerId: '42' })

  const contact = sim.contacts.get(out.ContactId ?? '')
  t.equal(contact?.participantToken, out.ParticipantToken)
  t.equal(contact?.initialContactId, out.ContactId)
  t.equal((contact?.endsAt ?? 0) - (contact?.createdAt ?? 0), 25 * 60 * 60_000, 'Connect\'s default chat duration: 25 hours')
  t.match(sim.stats(), { received: 1, created: 1, replayed: 0, active: 1, faulted: 0 })
})

t.test('each error fault becomes its SDK exception class with request id and Retry-After', async (t) => {
  const { sim, client } = await setup(t)
  const expectedStatus: Record<string, number> = {
    ThrottlingException: 429,
    TooManyRequestsException: 429,
    LimitExceededException: 429,
    ResourceNotFoundException: 404,
    AccessDeniedException: 403,
    InvalidParameterException: 400,
    InvalidRequestException: 400,
    InternalServiceException: 500
  }
  t.equal(ERROR_FAULT_TYPES.length, Object.keys(expectedStatus).length)
  for (const type of ERROR_FAULT_TYPES) {
    sim.script({ type, retryAfterSeconds: 7, message: `injected ${type}` })
    const err = await serviceError(start(client))
    const request = sim.requests.at(-1)
    t.equal(err.name, type, `${type}: exception class`)
    t.equal(err.message, `injected ${type}`)
    t.equal(err.$metadata.httpStatusCode, expectedStatus[type])
    t.equal(err.$metadata.requestId, request?.requestId, `${type}: request id`)
    t.equal(err.$fault, type === 'InternalServiceException' ? 'server' : 'client')
    // Connect's model marks no error as retryable: the SDK's retry decision rests on the
    // name/status (throttling names, 429, 5xx) and the Retry-After header, both visible here.
    t.equal(err.$retryable, undefined)
    t.equal(err.$response?.headers['retry-after'], '7', `${type}: Retry-After`)
    t.equal(request?.status, expectedStatus[type])
    t.equal(request?.errorType, type)
  }
  sim.script({ type: 'ThrottlingException' })
  const plain = await serviceError(start(client))
  t.equal(plain.$response?.headers['retry-after'], undefined, 'no Retry-After unless asked')
  t.equal(plain.message, 'Rate exceeded')
  t.equal(sim.stats().faulted, ERROR_FAULT_TYPES.length + 1)
  t.equal(sim.stats().created, 0)
})

t.test('the SDK retries a throttle with the same ClientToken and one contact results', async (t) => {
  const { sim } = await setup(t)
  const client = makeClient(sim, 3)
  t.teardown(() => client.destroy())
  sim.script({ type: 'ThrottlingException', retryAfterSeconds: 0 }, { type: 'InternalServiceException' })
  const out = await start(client)
  t.equal(out.$metadata.attempts, 3)
  t.equal(sim.requests.length, 3)
  const tokens = new Set(sim.requests.map((r) => r.clientToken))
  t.equal(tokens.size, 1, 'every attempt carries the same ClientToken')
  t.equal(sim.contacts.size, 1)
})

t.test('requests without a valid SigV4 Authorization are refused', async (t) => {
  const { sim } = await setup(t)
  const missing = await put(sim, BASE_INPUT, { authorization: '' })
  await expectApiError(t, missing, 403, 'MissingAuthenticationTokenException')

  const cases = [
    'Bearer abc',
    SIGV4.replace('/connect/', '/s3/'),
    SIGV4.replace('/aws4_request', '/aws4'),
    SIGV4.replace(/, Signature=.*/, ''),
    'AWS4-HMAC-SHA256 Credential=AKIDTEST/2025/us-east-1/connect/aws4_request, SignedHeaders=host, Signature=ab'
  ]
  for (const authorization of cases) {
    const res = await put(sim, BASE_INPUT, { authorization })
    await expectApiError(t, res, 403, 'UnrecognizedClientException')
  }
  t.equal(sim.requests.length, cases.length + 1, 'refused requests are recorded')
  t.equal(sim.requests[1]?.authorization, 'Bearer abc')
  t.equal(sim.requests[1]?.status, 403)
  t.equal(sim.contacts.size, 0)
  t.equal(sim.stats().invalid, cases.length + 1)
})

t.test('unknown operations get 404 UnknownOperationException and are not recorded', async (t) => {
  const { sim } = await setup(t)
  const get = await fetch(`${sim.url}/contact/chat`)
  await expectApiError(t, get, 404, 'UnknownOperationException')
  const other = await put({ ...sim, url: `${sim.url}/contact/chats?x=1` } as ConnectSimulator, BASE_INPUT)
  t.equal(other.status, 404)
  const stats = await fetch(`${sim.url}/__sim/stats`)
  await expectApiError(t, stats, 404, 'UnknownOperationException')
  t.equal(sim.requests.length, 0)
})

t.test('oversized and unparseable bodies are refused', async (t) => {
  const { sim } = await setup(t)
  const huge = JSON.stringify({ ...BASE_INPUT, Padding: 'x'.repeat(1024 * 1024) })
  await expectApiError(t, await put(sim, huge), 413, 'RequestEntityTooLargeException')
  await expectApiError(t, await put(sim, '{"InstanceId":'), 400, 'SerializationException')
  await expectApiError(t, await put(sim, '[1,2]'), 400, 'SerializationException')
  t.same(
    sim.requests.map((r) => r.status),
    [413, 400, 400]
  )
  // The connection stays usable after a refusal.
  t.equal((await put(sim, BASE_INPUT)).status, 200)
})

t.test('input limits are enforced with InvalidParameterException naming the field', async (t) => {
  const { sim } = await setup(t)
  const long = (n: number) => 'x'.repeat(n)
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['InstanceId missing', { InstanceId: undefined }, 'InstanceId'],
    ['InstanceId too long', { InstanceId: long(101) }, 'InstanceId'],
    ['ContactFlowId empty', { ContactFlowId: '' }, 'ContactFlowId'],
    ['ContactFlowId too long', { ContactFlowId: long(501) }, 'ContactFlowId'],
    ['ParticipantDetails missing', { ParticipantDetails: undefined }, 'ParticipantDetails'],
    ['DisplayName empty', { ParticipantDetails: { DisplayName: '' } }, 'ParticipantDetails.DisplayName'],
    ['DisplayName too long', { ParticipantDetails: { DisplayName: long(257) } }, 'ParticipantDetails.DisplayName'],
    ['DisplayName not a string', { ParticipantDetails: { DisplayName: 7 } }, 'ParticipantDetails.DisplayName'],
    ['ContentType too long', { InitialMessage: { ContentType: long(101), Content: 'hi' } }, 'InitialMessage.ContentType'],
    ['Content empty', { InitialMessage: { ContentType: 'text/plain', Content: '' } }, 'InitialMessage.Content'],
    ['Content too long', { InitialMessage: { ContentType: 'text/plain', Content: long(16_385) } }, 'InitialMessage.Content'],
    ['ClientToken too long', { ClientToken: long(501) }, 'ClientToken'],
    ['duration too short', { ChatDurationInMinutes: 59 }, 'ChatDurationInMinutes'],
    ['duration too long', { ChatDurationInMinutes: 10_081 }, 'ChatDurationInMinutes'],
    ['duration not an integer', { ChatDurationInMinutes: 60.5 }, 'ChatDurationInMinutes'],
    ['content types without text/plain', { SupportedMessagingContentTypes: ['text/markdown'] }, 'SupportedMessagingContentTypes'],
    ['RehydrationType unknown', { PersistentChat: { RehydrationType: 'ALL', SourceContactId: 'c' } }, 'PersistentChat.RehydrationType'],
    ['SourceContactId empty', { PersistentChat: { RehydrationType: 'FROM_SEGMENT', SourceContactId: '' } }, 'PersistentChat.SourceContactId'],
    [
      'PersistentChat with RelatedContactId',
      { PersistentChat: { RehydrationType: 'FROM_SEGMENT', SourceContactId: 'c' }, RelatedContactId: 'r' },
      'RelatedContactId'
    ],
    ['attribute not a string', { Attributes: { tier: 1 } }, 'Attributes.tier'],
    ['attributes too large', { Attributes: { k: long(32_768) } }, 'Attributes']
  ]
  for (const [name, patch, field] of cases) {
    const res = await put(sim, { ...BASE_INPUT, ...patch })
    const message = await expectApiError(t, res, 400, 'InvalidParameterException')
    t.ok(message.includes(field), `${name}: message names ${field} (${message})`)
    t.equal(sim.requests.at(-1)?.errorType, 'InvalidParameterException')
  }
  t.equal(sim.contacts.size, 0)
  t.equal(sim.stats().invalid, cases.length)
})

t.test('inputs exactly at the limits are accepted', async (t) => {
  const { client } = await setup(t)
  const long = (n: number) => 'x'.repeat(n)
  const out = await start(client, {
    InstanceId: long(100),
    ContactFlowId: long(500),
    // 256 characters, 512 UTF-16 code units: limits count characters.
    ParticipantDetails: { DisplayName: '😀'.repeat(256) },
    InitialMessage: { ContentType: long(100), Content: long(16_384) },
    ClientToken: long(500),
    ChatDurationInMinutes: 10_080,
    SupportedMessagingContentTypes: ['text/plain', 'text/markdown'],
    Attributes: { k: long(32_767) }
  })
  t.ok(out.ContactId)
  const min = await start(client, { ChatDurationInMinutes: 60 })
  t.ok(min.ContactId)
})

t.test('the same ClientToken replays the same contact without using quota', async (t) => {
  const { sim, client } = await setup(t, { maxActiveChats: 1 })
  const first = await start(client, { ClientToken: 'token-1' })
  const again = await start(client, { ClientToken: 'token-1' })
  t.equal(again.ContactId, first.ContactId)
  t.equal(again.ParticipantId, first.ParticipantId)
  t.equal(again.ParticipantToken, first.ParticipantToken)
  t.not(again.$metadata.requestId, first.$metadata.requestId, 'each answer has its own request id')
  t.equal(sim.requests[1]?.replayed, true)

  const other = await serviceError(start(client, { ClientToken: 'token-2' }))
  t.equal(other.name, 'LimitExceededException', 'a new token still counts against the quota')
  t.match(sim.stats(), { created: 1, replayed: 1, limitExceeded: 1, active: 1 })
})

t.test('concurrent requests with one ClientToken create one contact', async (t) => {
  const time = fakeClock()
  const { sim, client } = await setup(t, { latencyMs: 50, clock: time.clock })
  const pending = Promise.all(Array.from({ length: 5 }, () => start(client, { ClientToken: 'same' })))
  // All five past the idempotency check (it follows the body read at once) while the first waits out its latency.
  await waitFor(() => sim.requests.length === 5 && sim.requests.every((r) => r.clientToken === 'same'))
  t.equal(time.timers(), 1, 'one request creates, the other four wait for it')
  await time.tick(50)
  const results = await pending
  t.equal(new Set(results.map((r) => r.ContactId)).size, 1)
  t.equal(sim.contacts.size, 1)
  t.match(sim.stats(), { received: 5, created: 1, replayed: 4 })
})

t.test('concurrent distinct requests cannot overshoot maxActiveChats', async (t) => {
  const time = fakeClock()
  const { sim, client } = await setup(t, { latencyMs: 30, maxActiveChats: 1, clock: time.clock })
  const pending = Promise.allSettled([start(client), start(client), start(client)])
  // Two are refused while the first still waits out its latency, its contact not yet created.
  await waitFor(() => sim.requests.filter((r) => r.status === 429).length === 2)
  t.equal(sim.contacts.size, 0, 'refused on the reserved slot, before the first contact exists')
  await time.tick(30)
  const settled = await pending
  t.equal(settled.filter((s) => s.status === 'fulfilled').length, 1)
  const names = settled.flatMap((s) => (s.status === 'rejected' ? [(s.reason as Error).name] : []))
  t.same(names, ['LimitExceededException', 'LimitExceededException'])
  t.equal(sim.contacts.size, 1)
})

t.test('the request-rate bucket refuses beyond its burst and refills', async (t) => {
  const time = fakeClock()
  const { sim, client } = await setup(t, { requestRate: { perSecond: 1, burst: 2 }, clock: time.clock })
  await start(client)
  await start(client)
  const err = await serviceError(start(client))
  t.equal(err.name, 'TooManyRequestsException')
  t.equal(err.$metadata.httpStatusCode, 429)
  t.equal(err.$metadata.requestId, sim.requests.at(-1)?.requestId)
  t.equal(sim.stats().throttled, 1)
  // One token a second, by the simulator's clock.
  await time.tick(999)
  t.equal((await serviceError(start(client))).name, 'TooManyRequestsException', 'not a whole token after 999 ms')
  await time.tick(1)
  t.ok((await start(client)).ContactId, 'a token came back after a second and the next call got through')
  t.equal(sim.stats().created, 3)

  // The bucket runs before idempotency: replays also spend tokens, as in Connect.
  sim.reset()
  await start(client, { ClientToken: 'r' })
  await start(client, { ClientToken: 'r' })
  t.equal((await serviceError(start(client, { ClientToken: 'r' }))).name, 'TooManyRequestsException')
})

t.test('the request-rate quota can change mid-run, both ways, and be removed', async (t) => {
  const time = fakeClock()
  const { sim, client } = await setup(t, { requestRate: { perSecond: 0.001, burst: 3 }, clock: time.clock })
  await start(client)
  // Another system takes most of the account's quota: only one token is left in a bucket of 1.
  sim.setRequestRate({ perSecond: 0.001, burst: 1 })
  await start(client)
  t.equal((await serviceError(start(client))).name, 'TooManyRequestsException', 'the smaller burst applies at once')
  // It stops again: the bucket refills at the new rate, from now.
  sim.setRequestRate({ perSecond: 1000, burst: 2 })
  t.equal((await serviceError(start(client))).name, 'TooManyRequestsException', 'the bucket is still empty')
  await time.tick(1)
  t.ok((await start(client)).ContactId, 'a millisecond at 1000 a second brings a token back')
  t.equal(sim.stats().created, 3, 'a higher rate lets calls through again')
  sim.setRequestRate(null)
  const before = sim.stats().throttled
  await Promise.all(Array.from({ length: 5 }, () => start(client)))
  t.equal(sim.stats().throttled, before, 'no quota: nothing throttled')
})

t.test('maxActiveChats frees a slot when a chat ends or expires', async (t) => {
  // Ending: chats that last long enough that nothing expires while the test runs.
  const { sim, client } = await setup(t, { maxActiveChats: 1 })
  const first = await start(client)
  const err = await serviceError(start(client))
  t.equal(err.name, 'LimitExceededException')
  t.equal(err.$metadata.httpStatusCode, 429)
  sim.endChat(first.ContactId ?? '')
  t.equal(sim.stats().active, 0)
  const second = await start(client)
  t.equal(sim.stats().active, 1)
  t.not(second.ContactId, first.ContactId)
  t.throws(() => sim.endChat('nope'), /unknown contact/)

  // Expiring: a short chat frees its slot once its duration has passed on the simulator's clock.
  const time = fakeClock()
  const short = await setup(t, { maxActiveChats: 1, chatDurationMs: 50, clock: time.clock })
  await start(short.client)
  await time.tick(49)
  t.equal(short.sim.stats().active, 1, 'still active 1 ms before its end')
  await time.tick(1)
  t.equal(short.sim.stats().active, 0, 'the chat ended after chatDurationMs')
  t.ok((await start(short.client)).ContactId, 'and its slot is free again')
})

t.test('persistent chat follows Connect rehydration rules', async (t) => {
  const { sim, client } = await setup(t)
  const persistent = (type: 'ENTIRE_PAST_SESSION' | 'FROM_SEGMENT', id: string) =>
    start(client, { PersistentChat: { RehydrationType: type, SourceContactId: id } })

  const unknown = await serviceError(persistent('FROM_SEGMENT', 'no-such-contact'))
  t.equal(unknown.name, 'ResourceNotFoundException')
  t.equal(unknown.message, 'Source contact not found')

  const a = await start(client)
  const active = await serviceError(persistent('ENTIRE_PAST_SESSION', a.ContactId ?? ''))
  t.equal(active.name, 'InvalidRequestException')
  t.equal(active.message, 'Source contact is still active')

  sim.endChat(a.ContactId ?? '')
  const b = await persistent('ENTIRE_PAST_SESSION', a.ContactId ?? '')
  t.equal(b.ContinuedFromContactId, a.ContactId)
  t.match(sim.contacts.get(b.ContactId ?? ''), { initialContactId: a.ContactId, continuedFromContactId: a.ContactId })

  sim.endChat(b.ContactId ?? '')
  const notInitial = await serviceError(persistent('ENTIRE_PAST_SESSION', b.ContactId ?? ''))
  t.equal(notInitial.name, 'InvalidRequestException', 'ENTIRE_PAST_SESSION needs the initial contact')

  const c = await persistent('FROM_SEGMENT', b.ContactId ?? '')
  t.equal(c.ContinuedFromContactId, b.ContactId)
  t.equal(sim.contacts.get(c.ContactId ?? '')?.initialContactId, a.ContactId, 'the chain keeps its initial contact')

  const replay = await start(client, {
    ClientToken: sim.requests.at(-1)?.clientToken ?? '',
    PersistentChat: { RehydrationType: 'FROM_SEGMENT', SourceContactId: b.ContactId ?? '' }
  })
  t.equal(replay.ContinuedFromContactId, b.ContactId, 'replays keep ContinuedFromContactId')
  t.equal(replay.ContactId, c.ContactId)
})

t.test('scripted faults run in order, before a persistent fault, then normal behaviour resumes', async (t) => {
  const { sim, client } = await setup(t)
  sim.script({ type: 'ThrottlingException' }, { type: 'InternalServiceException' })
  t.equal((await serviceError(start(client))).name, 'ThrottlingException')
  t.equal((await serviceError(start(client))).name, 'InternalServiceException')
  t.ok((await start(client)).ContactId)

  sim.setFault({ type: 'AccessDeniedException' })
  sim.script({ type: 'ResourceNotFoundException' })
  t.equal((await serviceError(start(client))).name, 'ResourceNotFoundException')
  t.equal((await serviceError(start(client))).name, 'AccessDeniedException')
  t.equal((await serviceError(start(client))).name, 'AccessDeniedException')
  sim.setFault(null)
  t.ok((await start(client)).ContactId)

  // Requests refused before the fault stage do not consume a scripted fault.
  sim.script({ type: 'InternalServiceException' })
  t.equal((await put(sim, { InstanceId: 'i' })).status, 400)
  t.equal((await serviceError(start(client))).name, 'InternalServiceException')
  t.match(sim.stats(), { faulted: 6, created: 2 })
})

t.test('slow faults and latency delay a normal answer by exactly their time', async (t) => {
  const time = fakeClock()
  const { sim, client } = await setup(t, { clock: time.clock })
  /** Starts a chat, lets it reach its wait, moves the clock to 1 ms short of `ms`, then the rest. */
  const delayedBy = async (ms: number, what: string) => {
    const pending = start(client)
    await waitFor(() => time.timers() === 1)
    await time.tick(ms - 1)
    t.equal(sim.requests.at(-1)?.status, 0, `${what}: unanswered 1 ms before its time`)
    await time.tick(1)
    t.ok((await pending).ContactId, `${what}: answered normally once its time had passed`)
  }
  sim.script({ type: 'slow', delayMs: 80 })
  await delayedBy(80, 'slow fault')
  t.equal(sim.requests[0]?.status, 200)

  sim.setLatency(60)
  await delayedBy(60, 'latency')
  sim.setLatency(0)
  t.match(sim.stats(), { faulted: 1, created: 2 })
})

t.test('a hanging request is cut by close() without waiting', async (t) => {
  const { sim, client } = await setup(t)
  sim.script({ type: 'hang' })
  const pending = failure(start(client))
  await waitFor(() => sim.requests[0]?.errorType === 'hang')
  const began = performance.now()
  await sim.close()
  t.ok(performance.now() - began < 1000, 'close() did not wait for the hanging request')
  const err = (await pending) as Error & { $metadata?: { httpStatusCode?: number } }
  t.ok(err instanceof Error)
  t.equal(err.$metadata?.httpStatusCode, undefined, 'no HTTP response was received')
  t.equal(sim.requests[0]?.status, 0)
})

t.test('a reset fault destroys the socket; the next request works', async (t) => {
  const { sim, client } = await setup(t)
  sim.script({ type: 'reset' })
  const err = (await failure(start(client))) as Error & { code?: string }
  t.equal(err.code, 'ECONNRESET')
  t.equal(sim.requests[0]?.errorType, 'reset')
  t.ok((await start(client)).ContactId)
})

t.test('a malformed fault answers 200 with a body the SDK cannot parse', async (t) => {
  const { sim, client } = await setup(t)
  sim.script({ type: 'malformed' })
  const err = (await failure(start(client))) as Error & { $metadata?: { httpStatusCode?: number; requestId?: string } }
  t.notOk(err instanceof ConnectServiceException)
  t.match(err.message, /Deserialization error/)
  t.equal(err.$metadata?.httpStatusCode, 200)
  t.equal(err.$metadata?.requestId, sim.requests[0]?.requestId)
  t.equal(sim.contacts.size, 0)
})

t.test('reset() clears requests, contacts, faults, idempotency and buckets', async (t) => {
  const { sim, client } = await setup(t, { requestRate: { perSecond: 0.001, burst: 1 } })
  const first = await start(client, { ClientToken: 'tok' })
  sim.setFault({ type: 'InternalServiceException' })
  sim.script({ type: 'hang' })
  sim.reset()
  t.same(sim.requests, [])
  t.equal(sim.contacts.size, 0)
  t.same(sim.stats(), { received: 0, created: 0, replayed: 0, throttled: 0, limitExceeded: 0, invalid: 0, faulted: 0, active: 0, described: 0, stopped: 0, humanChecksVerified: 0 })
  const again = await start(client, { ClientToken: 'tok' })
  t.not(again.ContactId, first.ContactId, 'the idempotency cache was cleared')
  t.equal(sim.stats().created, 1, 'no fault applied and the bucket was refilled')
})

t.test('log receives one line per answer without secrets', async (t) => {
  const lines: string[] = []
  const { client } = await setup(t, { log: (line) => lines.push(line) })
  const out = await start(client)
  t.equal(lines.length, 1)
  t.match(lines[0], /StartChatContact 200 created requestId=/)
  t.notOk(lines[0]?.includes(out.ParticipantToken ?? '-'))
})

t.test('CLI prints its URL, serves the control API and exits on SIGTERM', async (t) => {
  const entry = fileURLToPath(new URL('../src/main.ts', import.meta.url))
  // The runner's own TypeScript loader (tap's), so the child's coverage is read through the same source maps.
  const loader = process.execArgv.some((a) => /typescript|tsx/.test(a)) ? process.execArgv : ['--import', 'tsx']
  const child = spawn(process.execPath, [...loader, entry], {
    env: { ...process.env, SIM_RATE: '1', SIM_BURST: '1', SIM_MAX_ACTIVE_CHATS: '5', SIM_LATENCY_MS: '1' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  const exited = once(child, 'exit')
  const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string]
  const { url } = JSON.parse(line) as { url: string }
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+$/)
  const sim = { url } as ConnectSimulator

  t.equal((await put(sim, BASE_INPUT)).status, 200)
  await expectApiError(t, await put(sim, BASE_INPUT), 429, 'TooManyRequestsException')

  const control = (path: string, body?: unknown) =>
    fetch(`${url}/__sim/${path}`, { method: 'POST', body: JSON.stringify(body ?? null) })
  t.equal((await control('fault', { type: 'nope' })).status, 400)
  t.equal((await control('fault', { type: 'AccessDeniedException' })).status, 200)
  t.equal((await control('reset')).status, 200)
  t.equal((await control('fault', { type: 'InternalServiceException' })).status, 200)
  await expectApiError(t, await put(sim, BASE_INPUT), 500, 'InternalServiceException')
  t.equal((await control('fault', null)).status, 200)
  t.equal((await control('rate', { perSecond: 0 })).status, 400)
  t.equal((await control('rate', { perSecond: 0.001, burst: 1 })).status, 200)
  t.equal((await control('rate', null)).status, 200)
  const stats = (await (await fetch(`${url}/__sim/stats`)).json()) as Record<string, number>
  t.match(stats, { received: 1, faulted: 1, created: 0, active: 0 })

  child.kill('SIGTERM')
  const [code] = (await exited) as [number | null]
  t.equal(code, 0)
})

t.test('an ended chat is forgotten after forgetEndedAfterMs (contact, transcript, persistent source); active ones stay', async (t) => {
  const { sim, client } = await setup(t, { forgetEndedAfterMs: 0 })
  const ended = await start(client)
  const active = await start(client)
  sim.endChat(ended.ContactId ?? '')
  t.ok(sim.participant?.transcript(ended.ContactId ?? ''), 'known until the next sweep')
  await start(client)
  t.notOk(sim.contacts.has(ended.ContactId ?? ''), 'the ended contact is gone (it was kept forever)')
  t.throws(() => sim.participant?.transcript(ended.ContactId ?? ''), /unknown contact/, 'and its transcript')
  t.ok(sim.contacts.has(active.ContactId ?? ''), 'the active one stays')
  const err = await failure(start(client, { PersistentChat: { RehydrationType: 'FROM_SEGMENT', SourceContactId: ended.ContactId } }))
  t.equal((err as ConnectServiceException).name, 'ResourceNotFoundException', 'a forgotten chat cannot be continued, as an unknown one')
  t.equal(sim.stats().created, 3)
})

t.test('by the simulator\'s clock an ended chat can be continued for an hour, then it is forgotten', async (t) => {
  const time = fakeClock()
  const { sim, client } = await setup(t, { clock: time.clock })
  const ended = (await start(client)).ContactId ?? ''
  sim.endChat(ended)
  await time.tick(59 * 60_000)
  const continued = await start(client, { PersistentChat: { RehydrationType: 'FROM_SEGMENT', SourceContactId: ended } })
  t.equal(continued.ContinuedFromContactId, ended, 'continued 59 minutes after it ended')
  t.ok(sim.contacts.has(ended), 'still kept')
  await time.tick(60_000)
  await start(client)
  t.notOk(sim.contacts.has(ended), 'forgotten once the hour has passed')
  t.throws(() => sim.participant?.transcript(ended), /unknown contact/, 'with its transcript')
  t.ok(sim.contacts.has(continued.ContactId ?? ''), 'the active chat that continued it stays')
})

t.test('the request history keeps the newest requestHistory entries; stats() still counts all', async (t) => {
  const { sim, client } = await setup(t, { requestHistory: 10 })
  const ids: string[] = []
  for (let i = 0; i < 25; i++) ids.push((await start(client)).ContactId ?? '')
  t.ok(sim.requests.length <= 10, `${sim.requests.length} kept`)
  t.equal(sim.stats().received, 25)
  t.equal(sim.requests.at(-1)?.status, 200, 'the newest is last')
  t.same(sim.contacts.size, 25, 'contacts are not requests: active chats all stay')
})
