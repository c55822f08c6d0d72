/**
 * Cold start of the Lambda entry: each run is a fresh `node` process that imports the handler
 * (which builds the app during init, as in Lambda's init phase) and then answers one chat start
 * against the Connect simulator, as the first invocation of a new execution environment.
 *
 *   npm run bench:lambda
 *
 * Variants: the esbuild bundle with the AWS SDK inside; the bundle with the SDK left external (as
 * if taken from the runtime's own copy, resolved here from node_modules); the same bundle run with
 * --enable-source-maps; the unbundled tsc output (dist/lambda.js and node_modules). Runs are
 * interleaved, so a busy moment of the machine falls on every variant. Settings (environment):
 * BENCH_RUNS (10).
 *
 * init: from the process's start (performance.timeOrigin) to the handler being ready (import and
 * the app built); first invocation: the first handler(event) call, a StartChatContact included.
 * Each is given as wall time and as CPU time (user + system, all threads): on a busy machine the
 * CPU time is the steadier figure, and Lambda gives a small function about one vCPU or less.
 */
import { execFile, execFileSync } from 'node:child_process'
import { statSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { buildLambda } from '../scripts/build-lambda.mjs'
import { startSimulator } from '@connect-chat-gateway/simulator'
import { httpApiEvent } from '../test/lambda/events.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 10)
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const OUT = join(ROOT, 'dist/bench-lambda')
const run = promisify(execFile)

interface Variant { name: string; entry: string; bytes?: number; nodeOptions?: string[] }
interface Sample { initMs: number; initCpuMs: number; firstInvokeMs: number; firstInvokeCpuMs: number }

/** Imports the handler, then invokes it once; prints both times as JSON on the last line. */
const RUNNER = `
const entry = process.env.BENCH_ENTRY
const cpuMs = (u) => (u.user + u.system) / 1000
const { handler } = await import(entry)
const initMs = performance.now()
const initCpu = process.cpuUsage()
const result = await handler(JSON.parse(process.env.BENCH_EVENT), { awsRequestId: 'bench' })
const firstInvokeMs = performance.now() - initMs
const firstInvokeCpuMs = cpuMs(process.cpuUsage(initCpu))
if (result.statusCode !== 200) { process.stderr.write('status ' + result.statusCode + ' ' + result.body + '\\n'); process.exit(1) }
process.stdout.write('\\n' + JSON.stringify({ initMs, initCpuMs: cpuMs(initCpu), firstInvokeMs, firstInvokeCpuMs }))
process.exit(0)`

function percentile (values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!
}

async function main () {
  process.stdout.write('building: the bundle (SDK bundled, SDK external) and the tsc output...\n')
  const bundled = await buildLambda({ outdir: join(OUT, 'sdk-bundled') })
  const external = await buildLambda({ outdir: join(OUT, 'sdk-external'), sdk: 'external' })
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' })
  const variants: Variant[] = [
    { name: 'bundle, SDK bundled', entry: bundled.outfile, bytes: bundled.bytes },
    { name: 'bundle, SDK external', entry: external.outfile, bytes: external.bytes },
    { name: 'bundle, SDK bundled, --enable-source-maps', entry: bundled.outfile, bytes: bundled.bytes, nodeOptions: ['--enable-source-maps'] },
    { name: 'dist/lambda.js (tsc, node_modules)', entry: join(ROOT, 'dist/lambda.js') }
  ]

  const sim = await startSimulator({ participant: false })
  const env = {
    PATH: process.env.PATH,
    AWS_REGION: 'eu-west-2',
    AWS_ACCESS_KEY_ID: 'AKIDBENCH',
    AWS_SECRET_ACCESS_KEY: 'bench-secret',
    AWS_ENDPOINT_URL_CONNECT: sim.url,
    CONNECT_INSTANCE_ID: '8f2e4a77-1c3b-4d5e-9f60-7a8b9c0d1e2f',
    CONNECT_CONTACT_FLOW_ID: '1b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b',
    ALLOWED_ORIGINS: 'https://shop.example.com',
    RESUME_TOKEN_SECRET: 'bench-resume-key-'.padEnd(40, 'b'),
    LOG_LEVEL: 'warn',
    BENCH_EVENT: JSON.stringify(httpApiEvent())
  }
  const samples = new Map<Variant, Sample[]>(variants.map((v) => [v, []]))
  try {
    for (let i = 0; i < RUNS; i++) {
      for (const variant of variants) {
        const { stdout } = await run(process.execPath, [...variant.nodeOptions ?? [], '--input-type=module', '-e', RUNNER], {
          cwd: join(variant.entry, '..'),
          env: { ...env, BENCH_ENTRY: pathToFileURL(variant.entry).href },
          timeout: 60_000
        })
        samples.get(variant)!.push(JSON.parse(stdout.trim().split('\n').at(-1)!) as Sample)
      }
      process.stdout.write(`run ${i + 1}/${RUNS}\n`)
    }
  } finally {
    await sim.close()
  }

  const ms = (n: number) => n.toFixed(0).padStart(5)
  const pair = (values: number[]) => `${ms(percentile(values, 0.5))} / ${ms(percentile(values, 0.9))}`
  process.stdout.write(`\nNode ${process.version}, ${RUNS} runs each, load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} CPUs; milliseconds, median / p90\n`)
  process.stdout.write('| variant | size | init CPU | init wall | first invocation CPU | first invocation wall |\n|---|---:|---:|---:|---:|---:|\n')
  for (const variant of variants) {
    const list = samples.get(variant)!
    const column = (key: keyof Sample) => pair(list.map((s) => s[key]))
    const size = variant.bytes === undefined ? 'node_modules' : `${(variant.bytes / 1024 / 1024).toFixed(1)} MiB`
    process.stdout.write(`| ${variant.name} | ${size} | ${column('initCpuMs')} | ${column('initMs')} | ${column('firstInvokeCpuMs')} | ${column('firstInvokeMs')} |\n`)
  }
  const map = statSync(`${bundled.outfile}.map`).size
  process.stdout.write(`\nsource map beside the bundle: ${(map / 1024 / 1024).toFixed(1)} MiB (read only with --enable-source-maps)\n`)
}

await main()
