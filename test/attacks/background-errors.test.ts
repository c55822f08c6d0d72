import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { build, startChat, validBody } from '../helper.js'

// Background work that fails (here a Redis that refuses every connection) is counted every time,
// logged once, and never ends the process or fails a request.

async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

t.test('a Redis that keeps refusing: counted in ccg_background_errors_total, logged once, chats still start', async (t) => {
  const { app, logs } = await build(t, { REDIS_URL: `redis://127.0.0.1:${await closedPort()}`, RESUME_TOKEN_SECRET: 'b'.repeat(40) })
  const count = async () => (await app.metrics.backgroundErrors.get()).values.find((v) => v.labels.source === 'redis')?.value ?? 0
  for (let i = 0; i < 300 && await count() < 3; i++) await sleep(20)
  t.ok(await count() >= 3, 'every reconnect failure is counted')
  const lines = logs().split('\n').filter((l) => l.includes('background work failed'))
  t.equal(lines.length, 1, 'but logged once')
  t.match(JSON.parse(lines[0]!), { level: 40, source: 'redis', error: { code: 'ECONNREFUSED' } })
  t.equal((await startChat(app, validBody())).statusCode, 200, 'requests are served meanwhile (fail open)')
})
