/**
 * A burst of simultaneous chat starts against Connect's API quota, with pacing configured right,
 * configured twice too high, configured right with Redis lost mid-burst, and off.
 *
 *   npm run bench:pacing
 *
 * In one process: the Connect simulator with a request-rate quota, and two gateway replicas
 * (the real app, the real SDK over HTTP) sharing Redis through a TCP hop the bench can cut. Each
 * replica is warmed with one start first, as a running service would be. Settings (environment):
 * BENCH_STARTS (100), BENCH_RATE and BENCH_BURST (5 and 5: Connect's quota), BENCH_TIMEOUT_MS
 * (10000), BENCH_CUT_MS (2000: when Redis is lost), REDIS_URL (else REDIS_TEST_URL, else
 * redis://127.0.0.1:6379). Without Redis, one replica and no "Redis lost" column.
 */
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { connect, createServer, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { buildApp, type App } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { startSimulator } from '@connect-chat-gateway/simulator'

const STARTS = Number(process.env.BENCH_STARTS ?? 100)
const RATE = Number(process.env.BENCH_RATE ?? 5)
const BURST = Number(process.env.BENCH_BURST ?? 5)
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_MS ?? 10_000)
const CUT_MS = Number(process.env.BENCH_CUT_MS ?? 2_000)
const REDIS_URL = process.env.REDIS_URL ?? process.env.REDIS_TEST_URL ?? 'redis://127.0.0.1:6379'
const body = JSON.stringify({ ParticipantDetails: { DisplayName: 'Bench' } })

interface Outcome { status: number; code: string; ms: number }
interface Scenario { pacing?: { rate: number; burst: number }; cutRedisAtMs?: number }

async function redisReachable (): Promise<boolean> {
  const client = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 1_000, maxRetriesPerRequest: 0, retryStrategy: () => null })
  client.on('error', () => {})
  try { await client.connect(); await client.ping(); return true } catch { return false } finally { client.disconnect() }
}

/** A TCP hop to Redis that can be cut, as a failed Redis node or network would be. */
async function redisHop () {
  const target = new URL(REDIS_URL)
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 6379), target.hostname)
    for (const s of [client, upstream]) { sockets.add(s); s.on('error', () => {}); s.on('close', () => sockets.delete(s)) }
    client.pipe(upstream).pipe(client)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  return { url: `redis://127.0.0.1:${port}`, cut: () => { server.close(); for (const s of sockets) s.destroy() } }
}

async function run (scenario: Scenario, replicas: number, withRedis: boolean) {
  const sim = await startSimulator({ requestRate: { perSecond: RATE, burst: BURST } })
  const prefix = `ccg-bench:${randomUUID()}:`
  const hop = withRedis ? await redisHop() : undefined
  const config = loadConfig({
    NODE_ENV: 'development',
    CONNECT_SIMULATOR: 'true',
    LOG_LEVEL: 'silent',
    CHAT_START_TIMEOUT_MS: String(TIMEOUT_MS),
    CONNECT_MAX_CONCURRENCY: '10000',
    RATE_LIMIT_MAX: '1000000',
    // Every start comes from one address: the live-chat caps are not what this bench measures.
    MAX_OPEN_CHATS_PER_CALLER: '1000000',
    CONNECT_MAX_ACTIVE_CHATS: '1000000',
    ...(hop ? { REDIS_URL: hop.url, REDIS_KEY_PREFIX: prefix } : {}),
    ...(scenario.pacing ? { CONNECT_RATE_LIMIT: String(scenario.pacing.rate), CONNECT_BURST: String(scenario.pacing.burst) } : {})
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
    const cut = scenario.cutRedisAtMs === undefined || !hop ? undefined : setTimeout(hop.cut, scenario.cutRedisAtMs)
    const outcomes: Outcome[] = await Promise.all(Array.from({ length: STARTS }, async (_, i) => {
      const t0 = Date.now()
      const res = await start(apps[i % apps.length]!)
      return { status: res.statusCode, code: res.statusCode === 200 ? 'started' : (res.json() as { code: string }).code, ms: Date.now() - t0 }
    }))
    const wallMs = Date.now() - began
    clearTimeout(cut)
    const after = sim.stats()
    const calls = sim.requests.length - calls0
    const created = after.created - before.created
    let withoutRedis = 0
    let learnedRate = scenario.pacing ? Infinity : NaN
    for (const app of apps) {
      const failOpen = await app.metrics.redisFailOpen.get()
      withoutRedis += failOpen.values.filter((v) => v.labels.use === 'pacing').reduce((n, v) => n + v.value, 0)
      if (scenario.pacing) learnedRate = Math.min(learnedRate, (await app.metrics.pacingRate.get()).values[0]?.value ?? Infinity)
    }
    return { outcomes, calls, created, throttled: after.throttled - before.throttled, wallMs, withoutRedis, learnedRate }
  } finally {
    for (const app of apps) await app.close()
    await sim.close()
    hop?.cut()
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
    'answered past the deadline': String(r.outcomes.filter((o) => o.ms > TIMEOUT_MS).length),
    'pacing rate at the end (calls/s)': Number.isFinite(r.learnedRate) ? String(Number(r.learnedRate.toFixed(2))) : '-',
    'pacing decisions without Redis': String(r.withoutRedis),
    'burst answered in': `${r.wallMs} ms`
  }
}

const withRedis = await redisReachable()
const replicas = withRedis ? 2 : 1
console.log(`${STARTS} simultaneous starts; Connect quota ${RATE}/s burst ${BURST}; deadline ${TIMEOUT_MS} ms; ` +
  `${replicas} replica(s)${withRedis ? ' sharing Redis' : ' (no Redis reachable at ' + REDIS_URL + ')'}\n`)
const scenarios: Array<[string, Scenario]> = [
  [`configured right (${RATE}/${BURST})`, { pacing: { rate: RATE, burst: BURST } }],
  [`twice too high (${2 * RATE}/${2 * BURST})`, { pacing: { rate: 2 * RATE, burst: 2 * BURST } }],
  ...(withRedis ? [[`right, Redis lost at ${CUT_MS / 1000} s`, { pacing: { rate: RATE, burst: BURST }, cutRedisAtMs: CUT_MS }]] as Array<[string, Scenario]> : []),
  ['pacing off', {}]
]
const columns: Array<[string, ReturnType<typeof summary>]> = []
for (const [name, scenario] of scenarios) columns.push([name, summary(await run(scenario, replicas, withRedis))])

const rows = Object.keys(columns[0]![1]) as Array<keyof ReturnType<typeof summary>>
const w = Math.max(...rows.map((k) => k.length))
const widths = columns.map(([name, s]) => Math.max(name.length, ...rows.map((k) => s[k].length)))
console.log(`${''.padEnd(w)}  ${columns.map(([name], i) => name.padEnd(widths[i]!)).join('  ')}`)
for (const k of rows) console.log(`${k.padEnd(w)}  ${columns.map(([, s], i) => s[k].padEnd(widths[i]!)).join('  ')}`)
