/**
 * A burst of simultaneous chat starts against Connect's API quota, with upstream pacing on and off.
 *
 *   npm run bench:pacing
 *
 * In one process: the Connect simulator with a request-rate quota, and two gateway replicas
 * (the real app, the real SDK over HTTP) sharing Redis. Each replica is warmed with one start
 * first, as a running service would be. Settings (environment): BENCH_STARTS (100), BENCH_RATE
 * and BENCH_BURST (5 and 5: the quota, and pacing set to match), BENCH_TIMEOUT_MS (10000),
 * REDIS_URL (else REDIS_TEST_URL, else redis://127.0.0.1:6379). Without Redis, one replica.
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { buildApp, type App } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { startSimulator } from '../src/connect/simulator.js'

const STARTS = Number(process.env.BENCH_STARTS ?? 100)
const RATE = Number(process.env.BENCH_RATE ?? 5)
const BURST = Number(process.env.BENCH_BURST ?? 5)
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_MS ?? 10_000)
const REDIS_URL = process.env.REDIS_URL ?? process.env.REDIS_TEST_URL ?? 'redis://127.0.0.1:6379'
const body = JSON.stringify({ ParticipantDetails: { DisplayName: 'Bench' } })

interface Outcome { status: number; code: string; ms: number }

async function redisReachable (): Promise<boolean> {
  const client = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 1_000, maxRetriesPerRequest: 0, retryStrategy: () => null })
  client.on('error', () => {})
  try { await client.connect(); await client.ping(); return true } catch { return false } finally { client.disconnect() }
}

async function run (pacing: boolean, replicas: number, withRedis: boolean) {
  const sim = await startSimulator({ requestRate: { perSecond: RATE, burst: BURST } })
  const prefix = `ccg-bench:${randomUUID()}:`
  const config = loadConfig({
    CONNECT_SIMULATOR: 'true',
    LOG_LEVEL: 'silent',
    CHAT_START_TIMEOUT_MS: String(TIMEOUT_MS),
    CONNECT_MAX_CONCURRENCY: '10000',
    RATE_LIMIT_MAX: '1000000',
    ...(withRedis ? { REDIS_URL, REDIS_KEY_PREFIX: prefix } : {}),
    ...(pacing ? { CONNECT_RATE_LIMIT: String(RATE), CONNECT_BURST: String(BURST) } : {})
  })
  const apps: App[] = []
  for (let i = 0; i < replicas; i++) {
    apps.push(await buildApp(config, {
      connectOverrides: { endpoint: sim.url, credentials: { accessKeyId: 'AKIDBENCH', secretAccessKey: 'bench' } }
    }))
  }
  const start = (app: App) => app.inject({ method: 'POST', url: '/chat/start', headers: { 'content-type': 'application/json' }, payload: body })
  try {
    for (const app of apps) await start(app)
    await sleep(1_500)
    const before = sim.stats()
    const calls0 = sim.requests.length

    const began = Date.now()
    const outcomes: Outcome[] = await Promise.all(Array.from({ length: STARTS }, async (_, i) => {
      const t0 = Date.now()
      const res = await start(apps[i % apps.length]!)
      return { status: res.statusCode, code: res.statusCode === 200 ? 'started' : (res.json() as { code: string }).code, ms: Date.now() - t0 }
    }))
    const wallMs = Date.now() - began
    const after = sim.stats()
    const calls = sim.requests.length - calls0
    const created = after.created - before.created
    return { outcomes, calls, created, throttled: after.throttled - before.throttled, wallMs }
  } finally {
    for (const app of apps) await app.close()
    await sim.close()
    if (withRedis) {
      const client = new Redis(REDIS_URL)
      const keys = await client.keys(`${prefix}*`)
      if (keys.length > 0) await client.del(...keys)
      client.disconnect()
    }
  }
}

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return '-'
  const sorted = [...xs].sort((a, b) => a - b)
  return `${sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]} ms`
}

function summary (r: Awaited<ReturnType<typeof run>>) {
  const ok = r.outcomes.filter((o) => o.status === 200)
  const failed = r.outcomes.filter((o) => o.status !== 200)
  const codes = new Map<string, number>()
  for (const o of failed) codes.set(`${o.status} ${o.code}`, (codes.get(`${o.status} ${o.code}`) ?? 0) + 1)
  return {
    'chats started': String(ok.length),
    'refused (status code: count)': [...codes].map(([k, n]) => `${k}: ${n}`).join(', ') || '-',
    'upstream calls': String(r.calls),
    'upstream TooManyRequests': String(r.throttled),
    'wasted upstream calls (no chat)': String(r.calls - r.created),
    'refused: median wait': pct(failed.map((o) => o.ms), 0.5),
    'refused: max wait': failed.length ? `${Math.max(...failed.map((o) => o.ms))} ms` : '-',
    'started: median wait': pct(ok.map((o) => o.ms), 0.5),
    'started: max wait': ok.length ? `${Math.max(...ok.map((o) => o.ms))} ms` : '-',
    'burst answered in': `${r.wallMs} ms`
  }
}

const withRedis = await redisReachable()
const replicas = withRedis ? 2 : 1
console.log(`${STARTS} simultaneous starts; Connect quota ${RATE}/s burst ${BURST}; deadline ${TIMEOUT_MS} ms; ` +
  `${replicas} replica(s)${withRedis ? ' sharing Redis' : ' (no Redis reachable at ' + REDIS_URL + ')'}\n`)
const on = summary(await run(true, replicas, withRedis))
const off = summary(await run(false, replicas, withRedis))

const rows = Object.keys(on) as Array<keyof typeof on>
const w = Math.max(...rows.map((k) => k.length))
const c = Math.max(16, ...rows.map((k) => on[k].length))
console.log(`${''.padEnd(w)}  ${'pacing on'.padEnd(c)}  pacing off`)
for (const k of rows) console.log(`${k.padEnd(w)}  ${on[k].padEnd(c)}  ${off[k]}`)
