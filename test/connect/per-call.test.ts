import t from 'tap'
import { ChatStarter } from '../../src/connect/chat-starter.js'
import { createConnectClient } from '../../src/connect/client.js'
import type { ChatStartRequest } from '../../src/connect/input.js'
import { startSimulator } from '@connect-chat-gateway/simulator'

const request: ChatStartRequest = { displayName: 'Ann Lee', attributes: {}, caller: 'address:127.0.0.1' }
const target = { instanceId: 'inst', contactFlowId: 'flow' }

/** Sockets the client's HTTP agent holds for requests in progress. */
async function busySockets (client: ReturnType<typeof createConnectClient>): Promise<number> {
  const handler = client.config.requestHandler as unknown as { configProvider: Promise<{ httpAgent: { sockets: Record<string, unknown[]> } }> }
  const { httpAgent } = await handler.configProvider
  return Object.values(httpAgent.sockets).flat().length
}

t.test('the client resolves its middleware once, yet each call keeps its own deadline: an attempt on the wire at the deadline is cut', async (t) => {
  const sim = await startSimulator({ latencyMs: 5_000 })
  t.teardown(() => sim.close())
  const client = createConnectClient({
    maxAttempts: 1, attemptTimeoutMs: 10_000, maxSockets: 10,
    overrides: { region: 'us-east-1', endpoint: sim.url, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } }
  })
  t.teardown(() => client.destroy())
  const starter = new ChatStarter({ client, timeoutMs: 300, maxConcurrency: 5 })
  await t.rejects(starter.start(request, target), { code: 'DEADLINE_EXCEEDED' })
  t.equal(sim.requests.length, 1, 'the attempt was sent')
  // Without the call's signal reaching the HTTP handler the socket would stay busy for 5 s.
  for (let i = 0; i < 100 && await busySockets(client) > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(await busySockets(client), 0, 'its socket was let go at the deadline')
  sim.setLatency(0)
  const chat = await starter.start(request, target)
  t.ok(chat.contactId, 'the next call on the same cached middleware starts its chat')
  t.equal(sim.requests.length, 2)
})
