import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import t from 'tap'
import type { App } from '../../src/app.js'
import { build, listenLocal as listen, until } from '../helper.js'

// A caller who leaves is let go: no chat is started for a customer who is no longer there, and
// their slot goes to someone who is. Counted at the simulator, over real sockets.

const body = JSON.stringify({ ParticipantDetails: { DisplayName: 'Gone Soon' } })
const request = `POST /chat/start HTTP/1.1\r\nHost: gw\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`

/** Sends a whole chat start from `from` and keeps the socket, so the test can walk away. */
async function caller (port: number, from: string): Promise<{ socket: Socket; answer: Promise<string> }> {
  const socket = connect({ port, host: '127.0.0.1', localAddress: from })
  socket.on('error', () => {})
  await once(socket, 'connect')
  let text = ''
  socket.setEncoding('utf8').on('data', (c: string) => { text += c })
  const answer = once(socket, 'close').then(() => text)
  socket.write(request)
  return { socket, answer }
}

async function counter (app: App, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await app.metrics.registry.getSingleMetric(name)?.get())
  return metric?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0
}

t.test('five callers leave while Connect hangs: their slots free at once, a real caller is served, and nobody is retried', async (t) => {
  const h = await build(t, { CONNECT_MAX_CONCURRENCY: '5', CONNECT_MAX_ATTEMPTS: '3', CONNECT_ATTEMPT_TIMEOUT_MS: '1500', CHAT_START_TIMEOUT_MS: '10000' })
  const port = await listen(h.app)
  h.sim.setFault({ type: 'hang' })
  const leavers = await Promise.all(Array.from({ length: 5 }, () => caller(port, '127.0.0.2')))
  await until('five attempts on the wire', () => h.sim.requests.length === 5)
  for (const l of leavers) l.socket.destroy()
  await until('five abandoned starts', async () => await counter(h.app, 'ccg_chat_starts_abandoned_total', { stage: 'on_the_wire' }) === 5)
  h.sim.setFault(null)

  const real = await caller(port, '127.0.0.3')
  t.match(await real.answer, /^HTTP\/1\.1 200 /, 'the caller who stayed gets a chat, not 503 OVERLOADED')
  await until('the abandoned starts to settle', async () => await counter(h.app, 'ccg_chat_starts_total', { outcome: 'caller_left' }) === 5)
  t.equal(h.sim.requests.length, 6, 'one attempt each for the five who left (let finish, never retried), one for the caller who stayed')
})

t.test('ten callers queued for pacing leave: the nine still waiting never reach Connect', async (t) => {
  const h = await build(t, { CONNECT_RATE_LIMIT: '1', CONNECT_BURST: '1', CHAT_START_TIMEOUT_MS: '15000' })
  const port = await listen(h.app)
  const leavers = await Promise.all(Array.from({ length: 10 }, () => caller(port, '127.0.0.2')))
  await until('one start sent and nine queued', async () =>
    h.sim.requests.length === 1 && (await h.app.metrics.pacingQueue.get()).values[0]?.value === 9)
  for (const l of leavers) l.socket.destroy()
  await until('nine starts abandoned while waiting', async () => await counter(h.app, 'ccg_chat_starts_abandoned_total', { stage: 'waiting' }) === 9)
  await until('every abandoned start settled', async () => await counter(h.app, 'ccg_chat_starts_total', { outcome: 'caller_left' }) === 9)
  t.equal((await h.app.metrics.pacingQueue.get()).values[0]?.value, 0, 'the pacing queue is empty')
  t.equal(h.sim.requests.length, 1, 'Connect saw only the start that had its slot before they left')
})

t.test('a caller who leaves during the backoff between retries gets no further attempt', async (t) => {
  const h = await build(t, { CONNECT_MAX_ATTEMPTS: '3', CHAT_START_TIMEOUT_MS: '10000' })
  const port = await listen(h.app)
  // A throttled answer with Retry-After makes the SDK wait seconds before its next attempt.
  h.sim.setFault({ type: 'TooManyRequestsException', retryAfterSeconds: 3 })
  const leaver = await caller(port, '127.0.0.2')
  await until('the first attempt answered', () => h.sim.requests.length === 1 && h.sim.requests[0]!.status > 0)
  leaver.socket.destroy()
  await until('the start settled', async () => await counter(h.app, 'ccg_chat_starts_total', { outcome: 'caller_left' }) === 1)
  t.equal(await counter(h.app, 'ccg_chat_starts_abandoned_total', { stage: 'waiting' }), 1, 'they left while the start waited to retry')
  t.equal(h.sim.requests.length, 1, 'no retry was sent for a caller who had gone')
})
