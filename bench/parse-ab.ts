/**
 * Micro-benchmark of the setting and address parsers: a git ref's (A) against this tree's (B),
 * interleaved A B B A so drift in the machine's load falls on both sides alike.
 *   npx tsx bench/parse-ab.ts --ab=<git ref> [--rounds=4] [--ops=200000]
 * The address functions run on every request (behind TRUST_PROXY) or connection; the duration
 * parser only at start-up and on a widget file reload; where A and B share it, it shows the noise.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const ref = arg('ab')
if (ref === undefined) throw new Error('--ab=<git ref> is required')
const rounds = Number(arg('rounds') ?? 4)
const ops = Number(arg('ops') ?? 200_000)
const ROOT = resolve(import.meta.dirname, '..')

interface Parsers {
  normalizeAddress (raw: string | undefined): string | undefined
  clientKey (address: string): string
  parseDurationMs (name: string, raw: string, defaultUnit: 'ms' | 's', examples: string): number
}

async function load (src: string): Promise<Parsers> {
  const address = await import(pathToFileURL(join(src, 'client-address.ts')).href)
  // The duration parser moved from config.ts to settings.ts.
  const settings = existsSync(join(src, 'settings.ts')) ? join(src, 'settings.ts') : join(src, 'config.ts')
  const { parseDurationMs } = await import(pathToFileURL(settings).href)
  return { normalizeAddress: address.normalizeAddress, clientKey: address.clientKey, parseDurationMs }
}

const dir = mkdtempSync(join(tmpdir(), 'parse-ab-'))
process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
execFileSync('sh', ['-c', 'git -C "$0" archive "$1" src | tar -x -C "$2"', ROOT, ref, dir])
const A = await load(join(dir, 'src'))
const B = await load(join(ROOT, 'src'))

// What sockets and X-Forwarded-For carry: IPv4, IPv4 on a dual-stack socket, IPv6, with ports and brackets, junk.
const ADDRESSES = ['203.0.113.7', '::ffff:203.0.113.7', '2001:db8:1:2:3:4:5:6', '203.0.113.7:1234', '[2001:db8::1]:443', 'fe80::1%eth0', '2001:db8::', 'garbage']
const DURATIONS = ['60000', '1 minute', '30 seconds', '2h', '30d', '15']

const cases: Array<[string, (p: Parsers, i: number) => unknown]> = [
  ['normalizeAddress', (p, i) => p.normalizeAddress(ADDRESSES[i % ADDRESSES.length])],
  ['normalizeAddress+clientKey', (p, i) => { const a = p.normalizeAddress(ADDRESSES[i % ADDRESSES.length]); return a && p.clientKey(a) }],
  ['parseDurationMs', (p, i) => p.parseDurationMs('X', DURATIONS[i % DURATIONS.length]!, 's', '')]
]

function nsPerOp (p: Parsers, fn: (p: Parsers, i: number) => unknown): number {
  let sink = 0
  const start = process.hrtime.bigint()
  for (let i = 0; i < ops; i++) if (fn(p, i) !== undefined) sink++
  const ns = Number(process.hrtime.bigint() - start) / ops
  if (sink < 0) console.log(sink)
  return ns
}

for (const [name, fn] of cases) {
  for (let w = 0; w < 3; w++) { nsPerOp(A, fn); nsPerOp(B, fn) } // warm up both
  const a: number[] = []
  const b: number[] = []
  for (let r = 0; r < rounds; r++) {
    // A B B A
    a.push(nsPerOp(A, fn)); b.push(nsPerOp(B, fn)); b.push(nsPerOp(B, fn)); a.push(nsPerOp(A, fn))
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!
  const fmt = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(' ')
  const min = (xs: number[]) => Math.min(...xs)
  console.log(`${name}: A median ${median(a).toFixed(0)} min ${min(a).toFixed(0)} ns/op [${fmt(a)}]`)
  console.log(`${' '.repeat(name.length)}  B median ${median(b).toFixed(0)} min ${min(b).toFixed(0)} ns/op [${fmt(b)}]; B/A median ${(median(b) / median(a)).toFixed(2)}, min ${(min(b) / min(a)).toFixed(2)}`)
}
