/**
 * CPU per refusal in process, without the kernel or a load generator: builds the app from a
 * compiled copy (production settings, logs to stdout) and sends refusals through app.inject, 16 at
 * a time. Prints each batch's CPU µs per request; the least of them is the figure. For an A/B, run
 * it alternately on two compiled copies (`npm run bench -- --ab=<ref>` leaves them in
 * node_modules/.cache/ccg-bench-a and ccg-bench), with stdout to /dev/null:
 *
 *   npx tsx bench/inject.ts node_modules/.cache/ccg-bench 400 8000 4 > /dev/null
 */
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const [dir = 'node_modules/.cache/ccg-bench', scenario = '400', perBatch = '8000', batches = '4'] = process.argv.slice(2)
const ORIGIN = 'https://shop.example.com'
Object.assign(process.env, {
  NODE_ENV: 'production', LOG_LEVEL: 'info', AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'AKIDBENCH', AWS_SECRET_ACCESS_KEY: 'bench-secret',
  AWS_ENDPOINT_URL_CONNECT: 'http://127.0.0.1:9', CONNECT_INSTANCE_ID: 'bench-instance', CONNECT_CONTACT_FLOW_ID: 'bench-flow',
  ALLOWED_ORIGINS: ORIGIN, ALLOWED_ATTRIBUTES: 'topic', RATE_LIMIT_MAX: scenario === '429' ? '1' : '1000000', RATE_LIMIT_WINDOW: '1 hour',
  RESUME_TOKEN_SECRET: 'bench-resume-token-secret-0123456789abcdef', METRICS_PORT: '0', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true'
})
const compiled = (file: string) => pathToFileURL(join(resolve(dir), file)).href
const { loadConfig } = await import(compiled('src/config.js')) as typeof import('../src/config.js')
const { buildApp } = await import(compiled('src/app.js')) as typeof import('../src/app.js')
const app = await buildApp(loadConfig())
await app.ready()

const payload = scenario === '400'
  ? JSON.stringify({ ParticipantDetails: { DisplayName: '' }, Extra: 1 })
  : JSON.stringify({ ParticipantDetails: { DisplayName: 'Ann Lee' }, Attributes: { topic: 'billing' } })
const headers = { 'content-type': 'application/json', origin: scenario === '403' ? 'https://evil.example' : ORIGIN }
const expected = Number(scenario)
let unexpected = 0

async function batch (n: number) {
  const worker = async () => {
    for (let i = 0; i < n / 16; i++) {
      const res = await app.inject({ method: 'POST', url: '/chat/start', headers, payload, remoteAddress: '10.0.0.1' })
      // The 429 scenario's first request is let through (and fails upstream: nothing listens on port 9).
      if (res.statusCode !== expected && scenario !== '429') unexpected++
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker))
}

await batch(3_000)
const figures: number[] = []
for (let b = 0; b < Number(batches); b++) {
  const before = process.cpuUsage()
  await batch(Number(perBatch))
  const used = process.cpuUsage(before)
  figures.push((used.user + used.system) / Number(perBatch))
}
process.stderr.write(`${JSON.stringify({ dir, scenario, leastUsPerRequest: Math.min(...figures).toFixed(1), batches: figures.map((x) => Math.round(x)), unexpected })}\n`)
await app.close()
