import t from 'tap'
import { createConnectClient } from '../../src/connect/client.js'
import { startSimulator } from '@connect-chat-gateway/simulator'
import { watchCredentials, type CredentialsEvents } from '../../src/connect/credentials.js'
import { fakeClock } from '../fake-clock.js'
import { build, startChat, until, validBody } from '../helper.js'

// Readiness follows credentials. The providers here are the SDK's documented `credentials` option
// (a function returning a promise of credentials): what a custom provider would be.

const KEYS = { accessKeyId: 'AKIDREADINESSTEST', secretAccessKey: 'readiness-secret-key-value' }

/** A provider that fails until `available` is set, counting its calls. */
function switchable () {
  const state = { available: false, calls: 0 }
  const provider = async () => {
    state.calls++
    if (!state.available) throw Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' })
    return KEYS
  }
  return { state, provider }
}

t.test('credentials resolve: ready at once, the provider named, the keys never', async (t) => {
  const client = createConnectClient({ region: 'eu-west-2', maxAttempts: 1, attemptTimeoutMs: 1000, maxSockets: 1, overrides: { credentials: KEYS } })
  t.teardown(() => client.destroy())
  const seen: unknown[] = []
  const watch = watchCredentials(client, { events: { resolved: (info) => seen.push(info), failed: (info) => seen.push(info) } })
  t.teardown(() => watch.close())
  await watch.firstAttempt
  t.equal(watch.notReadyReason, undefined)
  t.same(seen, [{ provider: 'CREDENTIALS_CODE', expiresAt: undefined }])
  t.notMatch(JSON.stringify(seen), KEYS.secretAccessKey)
})

t.test('no credentials: not ready with the reason; retried with doubling backoff; ready once they resolve', async (t) => {
  const { state, provider } = switchable()
  const client = createConnectClient({ region: 'eu-west-2', maxAttempts: 1, attemptTimeoutMs: 1000, maxSockets: 1, overrides: { credentials: provider } })
  t.teardown(() => client.destroy())
  const failures: Array<Parameters<CredentialsEvents['failed']>[0]> = []
  let resolved = 0
  const time = fakeClock()
  const watch = watchCredentials(client, {
    minBackoffMs: 10,
    maxBackoffMs: 40,
    clock: time.clock,
    events: { resolved: () => { resolved++ }, failed: (info) => failures.push(info) }
  })
  t.teardown(() => watch.close())
  await watch.firstAttempt
  t.equal(watch.notReadyReason, 'no AWS credentials: Could not load credentials from any providers')
  t.match(failures[0], { attempt: 1, errorName: 'CredentialsProviderError', reason: 'Could not load credentials from any providers', retryInMs: 10 })

  // The provider answers on its own time; the backoff between its attempts is the fake clock's.
  for (const [i, backoff] of [10, 20, 40].entries()) {
    await until(`failed attempt ${i + 1}`, () => failures.length === i + 1)
    await time.tick(backoff)
  }
  await until('four failed attempts', () => failures.length >= 4)
  t.same(failures.slice(0, 4).map((f) => f.retryInMs), [10, 20, 40, 40], 'backoff doubles up to its cap')
  state.available = true
  await time.tick(40)
  await until('the credentials to resolve', () => resolved === 1)
  t.equal(watch.notReadyReason, undefined)
  const calls = state.calls
  await time.runAll()
  t.equal(state.calls, calls, 'no further attempts once resolved')
})

t.test('a provider that hangs: start-up waits a bounded time, then serves not-ready', async (t) => {
  const client = createConnectClient({ region: 'eu-west-2', maxAttempts: 1, attemptTimeoutMs: 1000, maxSockets: 1, overrides: { credentials: () => new Promise(() => {}) } })
  t.teardown(() => client.destroy())
  const time = fakeClock()
  const watch = watchCredentials(client, { waitMs: 50, clock: time.clock, events: { resolved: () => t.fail('resolved'), failed: () => t.fail('failed') } })
  t.teardown(() => watch.close())
  let waited = false
  const first = watch.firstAttempt.then(() => { waited = true })
  await time.tick(49)
  t.notOk(waited, 'start-up waits its 50 ms')
  await time.tick(1)
  await first
  t.equal(watch.notReadyReason, 'AWS credentials have not resolved yet')
})

t.test('the app: readiness 503 NOT_READY without credentials, liveness 200, the reason logged; ready once they resolve', async (t) => {
  const { state, provider } = switchable()
  const sim = await startSimulator()
  t.teardown(() => sim.close())
  const { app, logs } = await build(t, {}, { simulator: sim, deps: { connectOverrides: { endpoint: sim.url, credentials: provider } } })
  const ready = await app.inject('/health/ready')
  t.equal(ready.statusCode, 503)
  t.same(ready.json(), { statusCode: 503, error: 'Service Unavailable', code: 'NOT_READY', message: 'This replica cannot call Amazon Connect yet' })
  t.equal((await app.inject('/health/live')).statusCode, 200, 'alive: a restart would not bring credentials')
  const line = logs().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => String(l.msg).startsWith('no AWS credentials'))
  t.match(line, { level: 50, reason: 'Could not load credentials from any providers', errorName: 'CredentialsProviderError', attempt: 1 })

  // A chat start meanwhile: 502, our message to the caller, the SDK's reason in the log line.
  const res = await startChat(app, validBody())
  t.equal(res.statusCode, 502)
  t.notMatch(res.body, 'credentials')
  t.match(logs(), /"upstream":\{"errorName":"CredentialsProviderError"[^}]*"message":"Could not load credentials from any providers"/)

  state.available = true
  await until('readiness 200', () => logs().includes('AWS credentials resolved'), 15_000)
  t.equal((await app.inject('/health/ready')).statusCode, 200)
  const after = await startChat(app, validBody())
  t.equal(after.statusCode, 200)
  t.equal(sim.requests.length, 1, 'only the start with credentials reached Connect')
})
