/**
 * `npm run bench`: compiles the service and the yardsticks into node_modules/.cache/ccg-bench,
 * starts the Connect simulator and each server as its own process, and drives them with autocannon.
 * Figures are ratios inside one run (same machine, same load): see docs/BENCHMARKS.md.
 *
 *   npm run bench                      # everything, about 4 minutes
 *   npm run bench -- --quick           # shorter runs, no soak (a smoke check, not figures)
 *   npm run bench -- --profile         # also CPU-profile the happy path (node --cpu-prof) and summarise it;
 *                                      # with --only, the refusal rows it names are profiled too
 *   npm run bench -- --only=happy,floor --set=LOG_LEVEL=warn   # what-if: extra service settings
 *   npm run bench -- --no-compile      # reuse node_modules/.cache/ccg-bench as it is
 *   npm run bench -- --only=soak --rate=600   # only the memory soak, at a chosen rate
 *   npm run bench -- --fixed-rate=300          # the fixed unsaturated rate for CPU per chat start (default 250)
 *   npm run bench -- --ab=<git ref> --only=happy,400 --rounds=3   # A/B: that commit's src/ against this one, interleaved
 */
import autocannon from 'autocannon'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { summarizeProfile } from './profile.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
// Inside node_modules so the compiled files resolve the project's packages.
const OUT = join(ROOT, 'node_modules', '.cache', 'ccg-bench')
// --ab: the other side of an A/B, compiled from a git ref's src/ and bench/.
const OUT_A = join(ROOT, 'node_modules', '.cache', 'ccg-bench-a')
const SRC_A = join(ROOT, 'node_modules', '.cache', 'ccg-src-a')
const args = new Set(process.argv.slice(2))
const QUICK = args.has('--quick')
const PROFILE = args.has('--profile')
// Soak rate; by default half the happy path's measured throughput.
const RATE_ARG = [...args].find((a) => a.startsWith('--rate='))
const RATE = RATE_ARG ? Number(RATE_ARG.slice(7)) : undefined
// CPU per chat start is compared at one rate every server sustains, below any of their saturation.
const FIXED_RATE = Number([...args].find((a) => a.startsWith('--fixed-rate='))?.slice(13) ?? 250)
const AB_REF = [...args].find((a) => a.startsWith('--ab='))?.slice(5)
const ROUNDS = Number([...args].find((a) => a.startsWith('--rounds='))?.slice(9) ?? 2)
// Reuse the last compiled copy, e.g. to measure a change tried out in it first.
const NO_COMPILE = args.has('--no-compile')
const ONLY = [...args].find((a) => a.startsWith('--only='))?.slice(7).split(',')
const EXTRA_ENV = Object.fromEntries([...args].filter((a) => a.startsWith('--set=')).map((a) => {
  const [key, ...value] = a.slice(6).split('=')
  return [key, value.join('=')]
}))
const WARMUP_S = QUICK ? 1 : 3
const MEASURE_S = QUICK ? 3 : 10
// Long enough for V8's heap to reach its working size at this rate, so growth after it means a leak.
const SOAK_WARMUP_S = 20
const SOAK_S = 60
const CONNECTIONS = 16
const ALLOWED_ORIGIN = 'https://shop.example.com'
const BODY = JSON.stringify({ ParticipantDetails: { DisplayName: 'Ann Lee' }, Attributes: { topic: 'billing' } })
const CLK_TCK = 100

// --- processes -------------------------------------------------------------------------------

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

function run (script: string, env: Record<string, string>, nodeArgs: string[] = [], dir = OUT): ChildProcess {
  const child = spawn(process.execPath, [...nodeArgs, join(dir, script)], {
    env: { PATH: process.env.PATH ?? '', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
    stdio: ['ignore', 'ignore', 'inherit']
  })
  child.on('exit', (code, signal) => {
    if (code !== 0 && code !== null && signal === null) process.stderr.write(`bench: ${script} exited with ${code}\n`)
  })
  return child
}

async function stop (child: ChildProcess) {
  if (child.exitCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  await Promise.race([exited, sleep(5_000).then(() => child.kill('SIGKILL'))])
}

async function waitForHttp (url: string, init: RequestInit = {}) {
  for (let i = 0; i < 1_000; i++) {
    try { await (await fetch(url, init)).arrayBuffer(); return } catch { await sleep(10) }
  }
  throw new Error(`bench: ${url} did not answer`)
}

/** Polls until `url` answers `status`; the time since `since` is the start-up time. */
async function waitForStatus (url: string, init: RequestInit, status: number, since: number): Promise<number> {
  for (let i = 0; i < 2_000; i++) {
    try {
      const res = await fetch(url, init)
      await res.arrayBuffer()
      if (res.status === status) return performance.now() - since
    } catch { /* not listening yet */ }
    await sleep(5)
  }
  throw new Error(`bench: ${url} did not answer ${status}`)
}

function procStat (pid: number) {
  // Fields after the command name: utime and stime are the 12th and 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / CLK_TCK
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0)
  return { cpuSeconds, rssMb: rssKb / 1024 }
}

function sampler (pid: number, everyMs: number) {
  const samples: number[] = []
  const timer = setInterval(() => { try { samples.push(procStat(pid).rssMb) } catch { /* exited */ } }, everyMs)
  return { samples, stop: () => clearInterval(timer) }
}

// --- scenarios -------------------------------------------------------------------------------

interface Scenario {
  name: string
  label: string
  script: string
  env?: Record<string, string>
  headers?: Record<string, string>
  body?: string
  expect: number
}

const serviceEnv = (simUrl: string): Record<string, string> => ({
  NODE_ENV: 'production',
  HOST: '127.0.0.1',
  LOG_LEVEL: 'info',
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'AKIDBENCH',
  AWS_SECRET_ACCESS_KEY: 'bench-secret',
  AWS_ENDPOINT_URL_CONNECT: simUrl,
  CONNECT_INSTANCE_ID: 'bench-instance',
  CONNECT_CONTACT_FLOW_ID: 'bench-flow',
  ALLOWED_ORIGINS: ALLOWED_ORIGIN,
  // One address starts every chat here: the chat quota's limits are replayed by bench:quota instead.
  MAX_OPEN_CHATS_PER_CALLER: '1000000',
  CONNECT_MAX_ACTIVE_CHATS: '1000000',
  ALLOWED_ATTRIBUTES: 'topic',
  RATE_LIMIT_MAX: '1000000',
  RESUME_TOKEN_SECRET: 'bench-resume-token-secret-0123456789abcdef',
  // Production puts metrics on 9464; any free port, so a leftover process cannot block a run.
  METRICS_PORT: '0',
  ...EXTRA_ENV
})

const scenarios: Scenario[] = [
  { name: 'floor', label: 'floor: node:http + same ConnectClient, no checks', script: 'bench/floor.js', expect: 200 },
  { name: 'express', label: 'Express + cors + SDK proxy, hand-written', script: 'bench/express-proxy.js', headers: { origin: ALLOWED_ORIGIN }, expect: 200 },
  { name: 'happy', label: 'service, happy path (200)', script: 'src/server.js', headers: { origin: ALLOWED_ORIGIN }, expect: 200 },
  { name: 'bare', label: 'bare Fastify route, constant answer', script: 'bench/bare-fastify.js', expect: 400 },
  { name: '400', label: 'service, invalid body (400)', script: 'src/server.js', headers: { origin: ALLOWED_ORIGIN }, body: JSON.stringify({ ParticipantDetails: { DisplayName: '' }, Extra: 1 }), expect: 400 },
  { name: '403', label: 'service, unlisted Origin (403)', script: 'src/server.js', headers: { origin: 'https://evil.example' }, expect: 403 },
  { name: '429', label: 'service, rate limited in memory (429)', script: 'src/server.js', headers: { origin: ALLOWED_ORIGIN }, env: { RATE_LIMIT_MAX: '1', RATE_LIMIT_WINDOW: '1 hour' }, expect: 429 },
  { name: '429-redis', label: 'service, rate limited in Redis (429)', script: 'src/server.js', headers: { origin: ALLOWED_ORIGIN }, env: { RATE_LIMIT_MAX: '1', RATE_LIMIT_WINDOW: '1 hour', REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' }, expect: 429 }
]

interface Figures {
  name: string
  label: string
  rps: number
  p50: number
  p99: number
  cpuUsPerReq: number
  peakRssMb: number
  requests: number
  off: number
  statuses: string
  /** Spawn to the first ready answer (the service: GET /health/ready 200; the others: their first answer). */
  startupMs: number
  /** RSS once ready, before any load. */
  idleRssMb: number
  /** Per-run CPU µs/req, kept when runs are combined: the spread on a shared machine. */
  cpuRuns: number[]
}

interface MeasureOptions { nodeArgs?: string[]; dir?: string; rate?: number }

function cannon (url: string, s: Scenario, seconds: number, extra: Partial<autocannon.Options> = {}) {
  return autocannon({
    url: `${url}/chat/start`,
    method: 'POST',
    connections: CONNECTIONS,
    duration: seconds,
    headers: { 'content-type': 'application/json', ...s.headers },
    body: s.body ?? BODY,
    ...extra
  })
}

async function measure (s: Scenario, simUrl: string, { nodeArgs = [], dir = OUT, rate }: MeasureOptions = {}): Promise<Figures> {
  const port = await freePort()
  const env: Record<string, string> = { ...serviceEnv(simUrl), PORT: String(port), ...s.env }
  if (s.name === '429-redis') env.REDIS_KEY_PREFIX = `ccg-bench-${Date.now()}:`
  const spawnedAt = performance.now()
  const child = run(s.script, env, nodeArgs, dir)
  const url = `http://127.0.0.1:${port}`
  const pace = rate === undefined ? {} : { overallRate: rate }
  try {
    const startupMs = s.script === 'src/server.js'
      ? await waitForStatus(`${url}/health/ready`, {}, 200, spawnedAt)
      : await waitForStatus(`${url}/chat/start`, { method: 'POST', headers: { 'content-type': 'application/json', ...s.headers }, body: s.body ?? BODY }, s.expect, spawnedAt)
    await sleep(500)
    const idleRssMb = procStat(child.pid as number).rssMb
    await cannon(url, s, WARMUP_S, pace)
    await fetch(`${simUrl}/__sim/reset`, { method: 'POST' })
    const pid = child.pid as number
    const before = procStat(pid)
    const rss = sampler(pid, 200)
    const result = await cannon(url, s, MEASURE_S, pace)
    rss.stop()
    const after = procStat(pid)
    const statuses = Object.entries(result.statusCodeStats ?? {}).map(([code, v]) => `${code}×${(v as { count: number }).count}`).join(' ')
    const total = Object.values(result.statusCodeStats ?? {}).reduce((n, v) => n + Number((v as { count: number }).count), 0)
    const expected = Number((result.statusCodeStats as Record<string, { count: number }> | undefined)?.[s.expect]?.count ?? 0)
    const cpuUsPerReq = ((after.cpuSeconds - before.cpuSeconds) * 1e6) / Math.max(1, total)
    return {
      name: s.name,
      label: s.label,
      startupMs,
      idleRssMb,
      cpuRuns: [cpuUsPerReq],
      rps: result.requests.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
      cpuUsPerReq,
      peakRssMb: Math.max(...rss.samples, after.rssMb),
      requests: total,
      off: total - expected + result.errors,
      statuses
    }
  } finally {
    await stop(child)
  }
}

/** Happy path at a fixed rate: RSS after warm-up against RSS at the end of a 60 s run. */
async function soak (simUrl: string, rate: number) {
  const port = await freePort()
  const child = run('src/server.js', { ...serviceEnv(simUrl), PORT: String(port) })
  const url = `http://127.0.0.1:${port}`
  const s = scenarios.find((x) => x.name === 'happy') as Scenario
  try {
    await waitForHttp(`${url}/chat/start`, { method: 'POST', headers: { 'content-type': 'application/json', ...s.headers }, body: BODY })
    await cannon(url, s, SOAK_WARMUP_S, { overallRate: rate })
    const rss = sampler(child.pid as number, 1_000)
    const result = await cannon(url, s, SOAK_S, { overallRate: rate })
    rss.stop()
    // Growth is the rise of a least-squares line through the 1 s samples over the run: GC's sawtooth
    // and V8 shrinking its heap after start-up average out, a leak's steady climb does not.
    const n = rss.samples.length
    const meanX = (n - 1) / 2
    const meanY = rss.samples.reduce((a, b) => a + b, 0) / n
    const slope = rss.samples.reduce((a, y, x) => a + (x - meanX) * (y - meanY), 0) /
      rss.samples.reduce((a, _, x) => a + (x - meanX) ** 2, 0)
    const first = meanY - slope * meanX
    const last = meanY + slope * meanX
    const every10s = rss.samples.filter((_, i) => i % 10 === 0).map((x) => x.toFixed(0))
    return { rate, seconds: SOAK_S, first, last, peak: Math.max(...rss.samples), growth: (last - first) / first, every10s, non2xx: result.non2xx + result.errors, requests: result.requests.total }
  } finally {
    await stop(child)
  }
}

function combine (runs: Figures[]): Figures | undefined {
  const first = runs[0]
  if (!first) return undefined
  const mean = (pick: (r: Figures) => number) => runs.reduce((n, r) => n + pick(r), 0) / runs.length
  return {
    ...first,
    rps: mean((r) => r.rps),
    p50: mean((r) => r.p50),
    p99: mean((r) => r.p99),
    cpuUsPerReq: mean((r) => r.cpuUsPerReq),
    cpuRuns: runs.flatMap((r) => r.cpuRuns),
    startupMs: mean((r) => r.startupMs),
    idleRssMb: mean((r) => r.idleRssMb),
    peakRssMb: Math.max(...runs.map((r) => r.peakRssMb)),
    requests: runs.reduce((n, r) => n + r.requests, 0),
    off: runs.reduce((n, r) => n + r.off, 0),
    statuses: runs.map((r) => r.statuses).join(' + ')
  }
}

// --- main ------------------------------------------------------------------------------------

function machine () {
  const cpu = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU'
  const mem = Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 1024 / 1024
  const cores = readFileSync('/proc/cpuinfo', 'utf8').split('\n').filter((l) => l.startsWith('processor')).length
  return `${cores} × ${cpu}, ${mem.toFixed(1)} GiB RAM, Node ${process.version}, ${process.platform}`
}

async function redisReachable (): Promise<boolean> {
  const { Redis } = await import('ioredis')
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true, connectTimeout: 500, maxRetriesPerRequest: 0, retryStrategy: () => null })
  redis.on('error', () => {})
  try { await redis.connect(); await redis.ping(); return true } catch { return false } finally { redis.disconnect() }
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })

function compile (tsconfig: string, outDir: string) {
  rmSync(outDir, { recursive: true, force: true })
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', tsconfig, '--outDir', outDir], { stdio: 'inherit' })
  // The service reads its version from package.json next to its parent folder, as in dist/.
  copyFileSync(join(ROOT, 'package.json'), join(outDir, 'package.json'))
}

/** The A side of an A/B: `ref`'s src/ and bench/, compiled against this checkout's node_modules. */
function compileRef (ref: string) {
  rmSync(SRC_A, { recursive: true, force: true })
  mkdirSync(SRC_A, { recursive: true })
  execFileSync('sh', ['-c', 'git -C "$0" archive "$1" src bench tsconfig.json | tar -x -C "$2"', ROOT, ref, SRC_A], { stdio: 'inherit' })
  compile(join(SRC_A, 'bench/tsconfig.json'), OUT_A)
}

const range = (xs: number[]) => xs.length > 1 ? `${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}` : fmt(xs[0] ?? 0)
const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)

/**
 * `--ab=<ref>`: the chosen service scenarios (default: happy) with `ref`'s compiled code (A) and this
 * checkout's (B), interleaved A B B A so drifting load weighs on both sides alike. Chat starts run
 * at the fixed rate and saturated; refusals saturated.
 */
async function abMain (simUrl: string) {
  const names = ONLY ?? ['happy']
  process.stdout.write(`\nA = ${AB_REF}, B = working tree; ${ROUNDS} rounds of A B B A; CPU µs per request (each run), req/s\n\n`)
  process.stdout.write('| scenario | load | A µs/req | B µs/req | A mean | B mean | B/A | A req/s | B req/s |\n|---|---|---|---|---:|---:|---:|---:|---:|\n')
  for (const name of names) {
    const s = scenarios.find((x) => x.name === name)
    if (!s || s.script !== 'src/server.js') continue
    const loads: (number | undefined)[] = s.expect === 200 ? [FIXED_RATE, undefined] : [undefined]
    for (const rate of loads) {
      const sides: Record<'A' | 'B', Figures[]> = { A: [], B: [] }
      for (let round = 0; round < ROUNDS; round++) {
        for (const side of ['A', 'B', 'B', 'A'] as const) {
          sides[side].push(await measure(s, simUrl, { dir: side === 'A' ? OUT_A : OUT, rate }))
        }
      }
      const cpu = (side: 'A' | 'B') => sides[side].map((r) => r.cpuUsPerReq)
      const rps = (side: 'A' | 'B') => meanOf(sides[side].map((r) => r.rps))
      const off = [...sides.A, ...sides.B].reduce((n, r) => n + r.off, 0)
      process.stdout.write(`| ${s.label} | ${rate === undefined ? 'saturated' : `${rate} req/s`} | ${cpu('A').map((x) => fmt(x)).join(', ')} | ${cpu('B').map((x) => fmt(x)).join(', ')} | ${fmt(meanOf(cpu('A')))} | ${fmt(meanOf(cpu('B')))} | ${fmt(meanOf(cpu('B')) / meanOf(cpu('A')), 2)} | ${fmt(rps('A'))} | ${fmt(rps('B'))} |${off ? ` **${off} unexpected answers**` : ''}\n`)
    }
  }
}

async function main () {
  const began = Date.now()
  // Other work on the machine skews every figure; the load average says how much there was.
  const loadStart = loadavg().map((x) => x.toFixed(1)).join(' ')
  if (!NO_COMPILE) {
    process.stdout.write('bench: compiling src/, the simulator and bench/ ...\n')
    compile(join(ROOT, 'bench/tsconfig.json'), OUT)
    if (AB_REF) compileRef(AB_REF)
  }

  const simPort = await freePort()
  const sim = run('packages/simulator/src/main.js', { SIM_PORT: String(simPort) })
  const simUrl = `http://127.0.0.1:${simPort}`
  try {
    await waitForHttp(`${simUrl}/__sim/stats`)
    if (AB_REF) {
      await abMain(simUrl)
      process.stdout.write(`\nMachine: ${machine()}; load average at start ${loadStart}, now ${loadavg().map((x) => x.toFixed(1)).join(' ')}\n`)
      return
    }
    const useRedis = await redisReachable()
    const wanted = (name: string) => (!ONLY || ONLY.includes(name)) && (name !== '429-redis' || useRedis)
    const byName = (name: string) => scenarios.find((s) => s.name === name) as Scenario
    const measureAll = async (names: string[], rateOf: (s: Scenario) => number | undefined = () => undefined) => {
      const out: Figures[] = []
      for (const s of names.filter(wanted).map(byName)) {
        const rate = rateOf(s)
        process.stdout.write(`bench: ${s.label}${rate === undefined ? '' : ` at ${fmt(rate)} req/s`} ...\n`)
        out.push(await measure(s, simUrl, { rate }))
      }
      return out
    }
    const combineAll = (runs: Figures[]) => scenarios.map((s) => combine(runs.filter((r) => r.name === s.name))).filter((r) => r !== undefined)

    // Each yardstick runs before and after what is compared with it, so drifting load on a shared
    // machine weighs on both sides of a ratio alike; figures are the mean of a scenario's runs.
    const saturated = combineAll(await measureAll(['floor', 'express', 'happy', 'happy', 'express', 'floor', 'bare', '400', '403', '429', '429-redis', 'bare']))
    const fixed = combineAll(await measureAll(['floor', 'express', 'happy', 'happy', 'express', 'floor'], () => FIXED_RATE))
    const sat = (name: string) => saturated.find((r) => r.name === name)
    // CPU per request as load rises: a quarter and half of each one's own saturated throughput.
    const levels = new Map<number, Figures[]>()
    for (const share of [0.25, 0.5]) {
      levels.set(share, await measureAll(['happy', 'floor', 'floor', 'happy'], (s) => Math.round((sat(s.name)?.rps ?? 400) * share)))
    }

    process.stdout.write(`\nMachine: ${machine()}; load average at start ${loadStart}, now ${loadavg().map((x) => x.toFixed(1)).join(' ')}\n`)
    process.stdout.write(`autocannon: ${CONNECTIONS} connections, ${WARMUP_S} s warm-up, ${MEASURE_S} s measured per run; every scenario runs twice, interleaved (means shown, CPU range in brackets); simulator in its own process, no added latency\n\n`)
    process.stdout.write('Saturated:\n\n| scenario | req/s | p50 ms | p99 ms | server CPU µs/req | peak RSS MB | answers |\n|---|---:|---:|---:|---:|---:|---|\n')
    for (const r of saturated) {
      process.stdout.write(`| ${r.label} | ${fmt(r.rps)} | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)} | ${fmt(r.cpuUsPerReq)} (${range(r.cpuRuns)}) | ${fmt(r.peakRssMb, 1)} | ${r.statuses}${r.off ? ` (**${r.off} unexpected**)` : ''} |\n`)
    }
    process.stdout.write(`\nAt a fixed ${FIXED_RATE} req/s:\n\n| scenario | req/s | p50 ms | p99 ms | server CPU µs/req | peak RSS MB | start-up ms | idle RSS MB |\n|---|---:|---:|---:|---:|---:|---:|---:|\n`)
    for (const r of fixed) {
      process.stdout.write(`| ${r.label} | ${fmt(r.rps)} | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)} | ${fmt(r.cpuUsPerReq)} (${range(r.cpuRuns)}) | ${fmt(r.peakRssMb, 1)} | ${fmt(r.startupMs)} | ${fmt(r.idleRssMb, 1)} |\n`)
    }
    process.stdout.write('\nCPU µs per request by load (share of its own saturated throughput):\n\n| server | 25% | 50% | 100% |\n|---|---:|---:|---:|\n')
    for (const name of ['happy', 'floor']) {
      const at = (share: number) => (levels.get(share) ?? []).filter((r) => r.name === name)
      const cell = (runs: Figures[]) => runs.length ? `${fmt(meanOf(runs.map((r) => r.cpuUsPerReq)))} (${range(runs.map((r) => r.cpuUsPerReq))})` : '-'
      const full = sat(name)
      process.stdout.write(`| ${full?.label ?? name} | ${cell(at(0.25))} | ${cell(at(0.5))} | ${full ? `${fmt(full.cpuUsPerReq)} (${range(full.cpuRuns)})` : '-'} |\n`)
    }

    process.stdout.write('\nTargets (ratios inside this run):\n')
    const goal = (ok: boolean) => ok ? 'met' : 'NOT met'
    const [floorS, expressS, happyS, bare] = ['floor', 'express', 'happy', 'bare'].map(sat)
    const fx = (name: string) => fixed.find((r) => r.name === name)
    const [floorF, expressF, happyF] = ['floor', 'express', 'happy'].map(fx)
    if (floorF && happyF && expressF) {
      const ratio = happyF.cpuUsPerReq / floorF.cpuUsPerReq
      process.stdout.write(`- CPU per chat start at ${FIXED_RATE} req/s: ${fmt(happyF.cpuUsPerReq)} µs, ${fmt(ratio, 2)}× the floor (target ≤ 1.25) and ${fmt(happyF.cpuUsPerReq / expressF.cpuUsPerReq, 2)}× Express (target < 1): ${goal(ratio <= 1.25 && happyF.cpuUsPerReq < expressF.cpuUsPerReq)}\n`)
      process.stdout.write(`- latency added over the floor at ${FIXED_RATE} req/s: p50 +${fmt(happyF.p50 - floorF.p50, 1)} ms, p99 +${fmt(happyF.p99 - floorF.p99, 1)} ms (Express: p50 +${fmt(expressF.p50 - floorF.p50, 1)}, p99 +${fmt(expressF.p99 - floorF.p99, 1)} ms)\n`)
    }
    if (floorS && happyS && expressS) {
      const ratio = happyS.rps / floorS.rps
      process.stdout.write(`- saturated: ${fmt(ratio, 2)}× the floor (target ≥ 0.80), ${fmt(happyS.rps / expressS.rps, 2)}× Express (target ≥ 1.0), ${happyS.off} non-2xx: ${goal(ratio >= 0.8 && happyS.rps >= expressS.rps && happyS.off === 0)}\n`)
    }
    for (const name of ['400', '403', '429', '429-redis']) {
      const r = sat(name)
      if (r && bare) {
        const ratio = r.rps / bare.rps
        process.stdout.write(`- ${r.label}: ${fmt(ratio, 2)}× bare Fastify (target ≥ 0.50): ${goal(ratio >= 0.5 && r.off === 0)}\n`)
      }
    }

    if (!QUICK && (!ONLY || ONLY.includes('soak'))) {
      const rate = RATE ?? Math.max(50, Math.round((happyS?.rps ?? 400) * 0.5 / 50) * 50)
      process.stdout.write(`\nbench: soak, happy path at ${rate} req/s for ${SOAK_S} s after ${SOAK_WARMUP_S} s warm-up ...\n`)
      const s = await soak(simUrl, rate)
      process.stdout.write(`- RSS trend ${fmt(s.first, 1)} MB at the start -> ${fmt(s.last, 1)} MB at the end (peak ${fmt(s.peak, 1)} MB): ${fmt(s.growth * 100, 1)}% growth (target < 10%): ${s.growth < 0.1 && s.non2xx === 0 ? 'met' : 'NOT met'}; ${fmt(s.requests)} requests, ${s.non2xx} non-2xx\n  RSS every 10 s (MB): ${s.every10s.join(', ')}\n`)
    }

    if (PROFILE) {
      const dir = join(OUT, 'profiles')
      mkdirSync(dir, { recursive: true })
      /** One run of `name` under `node --cpu-prof`, then the summary of the profile it wrote. */
      const profile = async (name: string, what: string, rate?: number) => {
        process.stdout.write(`\nbench: profiling ${what} (node --cpu-prof) ...\n`)
        const before = new Set(readdirSync(dir))
        await measure(byName(name), simUrl, { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`], rate })
        await sleep(500)
        const file = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile') && !before.has(f)).sort().at(-1)
        if (file) process.stdout.write(`${summarizeProfile(join(dir, file))}\n(profile: ${join(dir, file)})\n`)
      }
      for (const rate of !ONLY || ONLY.includes('happy') ? [FIXED_RATE, undefined] : []) {
        await profile('happy', `the happy path ${rate === undefined ? 'saturated' : `at ${rate} req/s`}`, rate)
      }
      // Refusal rows named in --only are profiled saturated too (bare Fastify as their yardstick).
      for (const name of ['bare', '400', '403', '429', '429-redis'].filter((n) => ONLY?.includes(n))) {
        await profile(name, `${byName(name).label}, saturated`)
      }
    }
    process.stdout.write(`\nbench: done in ${fmt((Date.now() - began) / 1000)} s\n`)
  } finally {
    await stop(sim)
  }
}

await main()
