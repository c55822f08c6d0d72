import { setTimeout as sleep } from 'node:timers/promises'
import { Gauge } from 'prom-client'
import t from 'tap'
import { build, freePort, startChat, validBody } from '../helper.js'

// Background work that fails (here a Redis that refuses every connection) is counted every time,
// logged once, and never ends the process or fails a request.

t.test('a Redis that keeps refusing: counted in ccg_background_errors_total, logged once, chats still start', async (t) => {
  const { app, logs } = await build(t, { REDIS_URL: `redis://127.0.0.1:${await freePort()}`, RESUME_TOKEN_SECRET: 'b'.repeat(40) })
  const count = async () => (await app.metrics.backgroundErrors.get()).values.find((v) => v.labels.source === 'redis')?.value ?? 0
  for (let i = 0; i < 300 && await count() < 3; i++) await sleep(20)
  t.ok(await count() >= 3, 'every reconnect failure is counted')
  const lines = logs().split('\n').filter((l) => l.includes('background work failed'))
  t.equal(lines.length, 1, 'but logged once')
  t.match(JSON.parse(lines[0]!), { level: 40, source: 'redis', error: { code: 'ECONNREFUSED' } })
  t.equal((await startChat(app, validBody())).statusCode, 200, 'requests are served meanwhile (fail open)')
})

t.test('a metrics collection that throws (descriptors gone, say): 503 to the scraper, counted, logged once, survived', async (t) => {
  const { app, logs } = await build(t, { RESUME_TOKEN_SECRET: 'b'.repeat(40) })
  // A collector failing the way process metrics do when /proc cannot be opened.
  app.metrics.registry.registerMetric(new Gauge({
    name: 'test_failing_collector', help: 'throws on collect', registers: [],
    collect () { throw Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' }) }
  }))
  for (let i = 0; i < 3; i++) {
    const res = await app.inject('/metrics')
    t.equal(res.statusCode, 503, `scrape ${i + 1}`)
  }
  t.equal((await app.metrics.backgroundErrors.get()).values.find((v) => v.labels.source === 'metrics')?.value, 3)
  t.equal(logs().split('\n').filter((l) => l.includes('background work failed')).length, 1, 'logged once')
  t.notMatch(logs(), /"level":50/, 'nothing at error level')
  t.equal((await startChat(app, validBody())).statusCode, 200)
})
