import t, { type Test } from 'tap'
import { StartChatContactCommand } from '@aws-sdk/client-connect'
import { ChatStarter } from '../../src/connect/chat-starter.js'
import { createConnectClient } from '../../src/connect/client.js'
import { DEFAULT_RETRY_AFTER, mapConnectError } from '../../src/connect/errors.js'
import { buildStartChatInput, clientTokenFor, type ChatStartRequest } from '../../src/connect/input.js'
import { startSimulator } from '@connect-chat-gateway/simulator'
import { Overloaded, GatewayError } from '../../src/errors.js'

const target = { instanceId: 'inst', contactFlowId: 'flow' }
const base: ChatStartRequest = { displayName: 'Ann', attributes: {} }

t.test('buildStartChatInput: instance and flow from the target, optional fields only when present', async (t) => {
  t.same(buildStartChatInput(base, target), { InstanceId: 'inst', ContactFlowId: 'flow', ParticipantDetails: { DisplayName: 'Ann' } })
  const full = buildStartChatInput({
    ...base,
    attributes: { topic: 'x' },
    initialMessage: { contentType: 'text/plain', content: 'hi' },
    supportedMessagingContentTypes: ['text/plain'],
    chatDurationInMinutes: 90,
    persistentChat: { rehydrationType: 'FROM_SEGMENT', sourceContactId: 'c-1' },
    idempotencyKey: 'k'
  }, target)
  t.same(full.Attributes, { topic: 'x' })
  t.same(full.InitialMessage, { ContentType: 'text/plain', Content: 'hi' })
  t.equal(full.ChatDurationInMinutes, 90)
  t.same(full.PersistentChat, { RehydrationType: 'FROM_SEGMENT', SourceContactId: 'c-1' })
  t.match(full.ClientToken, /^[0-9a-f]{64}$/)
})

t.test('clientTokenFor: stable for the same key and request, different otherwise', async (t) => {
  t.equal(clientTokenFor(base, target), undefined)
  const a = clientTokenFor({ ...base, idempotencyKey: 'k1' }, target)
  t.equal(a, clientTokenFor({ ...base, idempotencyKey: 'k1' }, target))
  t.not(a, clientTokenFor({ ...base, idempotencyKey: 'k2' }, target))
  t.not(a, clientTokenFor({ ...base, displayName: 'Bob', idempotencyKey: 'k1' }, target))
  t.not(a, clientTokenFor({ ...base, idempotencyKey: 'k1' }, { ...target, contactFlowId: 'other' }))
})

t.test('mapConnectError: each upstream error to its named error', async (t) => {
  const ctx = { deadlineExpired: false, persistentChat: false }
  const sdk = (name: string, headers: Record<string, string> = {}) =>
    Object.assign(new Error('upstream text'), { name, $metadata: { requestId: 'rid', httpStatusCode: 400, attempts: 2 }, $response: { headers } })
  t.equal(mapConnectError(sdk('ThrottlingException'), ctx).code, 'UPSTREAM_THROTTLED')
  t.equal(mapConnectError(sdk('TooManyRequestsException'), ctx).retryAfterSeconds, DEFAULT_RETRY_AFTER.throttled)
  t.equal(mapConnectError(sdk('LimitExceededException'), ctx).retryAfterSeconds, DEFAULT_RETRY_AFTER.quota)
  t.equal(mapConnectError(sdk('LimitExceededException', { 'retry-after': '7' }), ctx).retryAfterSeconds, 7)
  t.equal(mapConnectError(sdk('ThrottlingException', { 'retry-after': '99999' }), ctx).retryAfterSeconds, 300, 'capped')
  const date = new Date(Date.now() + 20_000).toUTCString()
  const fromDate = mapConnectError(sdk('ThrottlingException', { 'retry-after': date }), ctx).retryAfterSeconds ?? 0
  t.ok(fromDate >= 19 && fromDate <= 21, `HTTP-date hint (${fromDate})`)
  t.equal(mapConnectError(sdk('ThrottlingException', { 'retry-after': 'garbage' }), ctx).retryAfterSeconds, DEFAULT_RETRY_AFTER.throttled)
  for (const name of ['ResourceNotFoundException', 'AccessDeniedException', 'InvalidParameterException', 'InvalidRequestException']) {
    const e = mapConnectError(sdk(name), ctx)
    t.equal(e.code, 'UPSTREAM_MISCONFIGURED', name)
    t.same(e.upstream, { errorName: name, requestId: 'rid', httpStatus: 400, attempts: 2 })
  }
  t.equal(mapConnectError(sdk('InvalidRequestException'), { ...ctx, persistentChat: true }).code, 'SOURCE_CONTACT_REFUSED')
  t.equal(mapConnectError(sdk('ResourceNotFoundException'), { ...ctx, persistentChat: true }).code, 'SOURCE_CONTACT_REFUSED')
  t.equal(mapConnectError(sdk('InternalServiceException'), ctx).code, 'UPSTREAM_FAILED')
  t.equal(mapConnectError('a string', ctx).code, 'UPSTREAM_FAILED')
  t.equal(mapConnectError(sdk('ThrottlingException'), { ...ctx, deadlineExpired: true }).code, 'DEADLINE_EXCEEDED')
  const ours = new Overloaded('x')
  t.equal(mapConnectError(ours, ctx), ours, 'our own errors pass through')
  t.notMatch(mapConnectError(sdk('InternalServiceException'), ctx).message, /upstream text/)
})

t.test('retry strategy: LimitExceeded tried once, throttling retried up to maxAttempts, observer counts', async (t) => {
  const sim = await startSimulator()
  t.teardown(() => sim.close())
  const counts = { attempts: 0, retries: [] as string[] }
  const client = createConnectClient({
    maxAttempts: 3, attemptTimeoutMs: 1000, maxSockets: 10,
    observer: { onAttempt: () => counts.attempts++, onRetry: (e) => counts.retries.push(e) },
    overrides: { region: 'us-east-1', endpoint: sim.url, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } }
  })
  t.teardown(() => client.destroy())
  const send = () => client.send(new StartChatContactCommand(buildStartChatInput(base, target)))

  sim.script({ type: 'LimitExceededException' })
  await t.rejects(send(), { name: 'LimitExceededException' })
  t.equal(sim.requests.length, 1)
  t.equal(counts.attempts, 1)
  t.same(counts.retries, [])

  sim.reset()
  sim.script({ type: 'TooManyRequestsException' }, { type: 'TooManyRequestsException' }, { type: 'TooManyRequestsException' })
  await t.rejects(send(), { name: 'TooManyRequestsException', $metadata: { attempts: 3 } })
  t.equal(sim.requests.length, 3)
  t.same(counts.retries, ['TooManyRequestsException', 'TooManyRequestsException'])
})

/** A real client toward the simulator, one attempt, destroyed after the test. */
function clientFor (t: Test, endpoint: string) {
  const client = createConnectClient({
    maxAttempts: 1, attemptTimeoutMs: 2000, maxSockets: 10,
    overrides: { region: 'us-east-1', endpoint, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } }
  })
  t.teardown(() => client.destroy())
  return client
}

t.test('ChatStarter: sheds past the concurrency cap without calling Connect', async (t) => {
  const sim = await startSimulator({ latencyMs: 300 })
  t.teardown(() => sim.close())
  const client = clientFor(t, sim.url)
  const outcomes: string[] = []
  const starter = new ChatStarter({
    client, timeoutMs: 5000, maxConcurrency: 2,
    onOutcome: (o) => outcomes.push(o.ok ? 'ok' : o.error.code)
  })
  const results = await Promise.allSettled([starter.start(base, target), starter.start(base, target), starter.start(base, target)])
  t.same(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected'])
  const err = (results[2] as PromiseRejectedResult).reason
  t.ok(err instanceof GatewayError)
  t.equal(err.code, 'OVERLOADED')
  t.equal(err.retryAfterSeconds, 1)
  t.equal(sim.requests.length, 2)
  t.equal(starter.activeCalls, 0)
  t.same(outcomes.sort(), ['OVERLOADED', 'ok', 'ok'])
})

t.test('ChatStarter: the deadline counts from when the request arrived', async (t) => {
  const sim = await startSimulator({ latencyMs: 400 })
  t.teardown(() => sim.close())
  const client = clientFor(t, sim.url)
  const starter = new ChatStarter({ client, timeoutMs: 1000, maxConcurrency: 5 })
  await t.rejects(starter.start(base, target, Date.now() - 800), { code: 'DEADLINE_EXCEEDED' })
})

t.test('ChatStarter: a pacer that refuses stops the call before Connect', async (t) => {
  const sim = await startSimulator()
  t.teardown(() => sim.close())
  const client = clientFor(t, sim.url)
  let throttled = 0
  const starter = new ChatStarter({
    client, timeoutMs: 1000, maxConcurrency: 5,
    pacer: { acquire: async () => { throw new Overloaded('no slot', { retryAfterSeconds: 4 }) }, onThrottled: () => throttled++ }
  })
  await t.rejects(starter.start(base, target), { code: 'OVERLOADED', retryAfterSeconds: 4 })
  t.equal(sim.requests.length, 0)
  t.equal(throttled, 0)
})
