import t from 'tap'
import { build, ORIGIN, startChat, validBody } from '../helper.js'

// Past CONNECT_MAX_CONCURRENCY a start is shed at once (503), never queued behind a slow Connect.

async function until (condition: () => boolean, what: string) {
  const giveUp = Date.now() + 10_000
  while (!condition()) {
    if (Date.now() > giveUp) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

t.test('at CONNECT_MAX_CONCURRENCY while Connect is slow -> 503 OVERLOADED with Retry-After at once; Connect not called', async (t) => {
  const { app, sim } = await build(t, { CONNECT_MAX_CONCURRENCY: '2', CONNECT_ATTEMPT_TIMEOUT_MS: '10000', CHAT_START_TIMEOUT_MS: '10000' })
  sim.script({ type: 'slow', delayMs: 1_500 }, { type: 'slow', delayMs: 1_500 })
  let settled = 0
  const slow = [1, 2].map(() => startChat(app, validBody()).finally(() => { settled++ }))
  await until(() => sim.requests.length === 2, 'two calls to reach Connect')

  const shed = await startChat(app, validBody(), { origin: ORIGIN })
  t.equal(settled, 0, 'answered while both slow calls were still in flight, not after them')
  t.equal(shed.statusCode, 503)
  t.equal(shed.json().code, 'OVERLOADED')
  t.equal(shed.headers['retry-after'], '1')
  t.equal(shed.headers['access-control-allow-origin'], ORIGIN)
  t.equal(sim.requests.length, 2, 'the shed start never reached Connect')

  t.same((await Promise.all(slow)).map((r) => r.statusCode), [200, 200])
  t.equal((await startChat(app, validBody())).statusCode, 200, 'capacity comes back once calls finish')
  const outcomes = (await app.metrics.chatStarts.get()).values.map((v) => [v.labels.outcome, v.value])
  t.same(Object.fromEntries(outcomes), { started: 3, overloaded: 1 })
})
