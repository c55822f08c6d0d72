/**
 * The chat-quota attack, replayed: bot addresses spend their whole per-address rate limit on chat
 * starts, then 40 verified customers (a customer token each, an address each) try to start a chat.
 *
 *   npm run bench:quota
 *
 * In one process: the Connect simulator with the instance's concurrent-chat quota (100), and two
 * gateway replicas (the real app, the real SDK over HTTP, real sockets from 127.0.0.x source
 * addresses) sharing Redis. Each row is one configuration: the quota guard off (as before it
 * existed), the defaults, and the defaults with HUMAN_CHECK=pow (asked while busy; the bots do not
 * solve it), and a share sized for 40 customers. Settings (environment): BENCH_ATTACKERS (10,50), BENCH_CUSTOMERS (40), REDIS_URL
 * (else REDIS_TEST_URL, else redis://127.0.0.1:6379; without Redis, one replica).
 */
import { randomUUID } from 'node:crypto'
import { request } from 'node:http'
import { SignJWT } from 'jose'
import { Redis } from 'ioredis'
import { buildApp, type App } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { startSimulator, type ConnectSimulator } from '@connect-chat-gateway/simulator'

const ATTACKERS = (process.env.BENCH_ATTACKERS ?? '10,50').split(',').map(Number)
const CUSTOMERS = Number(process.env.BENCH_CUSTOMERS ?? 40)
const QUOTA = 100
const REDIS_URL = process.env.REDIS_URL ?? process.env.REDIS_TEST_URL ?? 'redis://127.0.0.1:6379'
const ORIGIN = 'https://shop.example.com'
const CUSTOMER_SECRET = 'bench-customer-secret-0123456789-0123456789'
const body = JSON.stringify({ ParticipantDetails: { DisplayName: 'Bench' } })

const CONFIGURATIONS: Array<{ name: string; env: Record<string, string> }> = [
  { name: 'guard off (before)', env: { MAX_OPEN_CHATS_PER_CALLER: '1000000', CONNECT_MAX_ACTIVE_CHATS: '1000000', ANONYMOUS_CHAT_SHARE: '1' } },
  { name: 'defaults', env: {} },
  { name: 'defaults + HUMAN_CHECK=pow', env: { HUMAN_CHECK: 'pow' } },
  { name: 'ANONYMOUS_CHAT_SHARE=0.6', env: { ANONYMOUS_CHAT_SHARE: '0.6' } }
]

async function redisReachable (): Promise<boolean> {
  const client = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 1_000, maxRetriesPerRequest: 0, retryStrategy: () => null })
  client.on('error', () => {})
  try { await client.connect(); await client.ping(); return true } catch { return false } finally { client.disconnect() }
}

/** One chat start over a real socket from `from`; the status, and the ContactId when started. */
function start (port: number, from: string, headers: Record<string, string> = {}): Promise<{ status: number; code?: string; contactId?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, method: 'POST', path: '/chat/start', localAddress: from, agent: false,
      headers: { 'content-type': 'application/json', origin: ORIGIN, 'content-length': Buffer.byteLength(body), ...headers }
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const json = JSON.parse(Buffer.concat(chunks).toString() || '{}') as { code?: string; data?: { startChatResult?: { ContactId?: string } } }
        resolve({ status: res.statusCode ?? 0, code: json.code, contactId: json.data?.startChatResult?.ContactId })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

async function scenario (env: Record<string, string>, attackers: number, shared: boolean) {
  const sim: ConnectSimulator = await startSimulator({ maxActiveChats: QUOTA, latencyMs: 20 })
  const config = loadConfig({
    NODE_ENV: 'production', CONNECT_SIMULATOR: 'true', LOG_LEVEL: 'silent', ALLOWED_ORIGINS: ORIGIN, HOST: '127.0.0.1',
    RESUME_TOKEN_SECRET: 'bench-resume-token-secret-0123456789abcdef', CUSTOMER_JWT_SECRET: CUSTOMER_SECRET, METRICS_PORT: '0',
    ...(shared ? { REDIS_URL, REDIS_KEY_PREFIX: `ccg-bench-quota-${randomUUID()}:` } : {}),
    ...env
  })
  const apps: App[] = []
  for (let i = 0; i < (shared ? 2 : 1); i++) {
    apps.push(await buildApp(config, { connectOverrides: { endpoint: sim.url, credentials: { accessKeyId: 'AKIDBENCH', secretAccessKey: 'bench' } } }))
  }
  const ports: number[] = []
  for (const app of apps) {
    await app.listen({ port: 0, host: '127.0.0.1' })
    ports.push((app.server.address() as { port: number }).port)
  }
  try {
    // Every bot address spends its whole allowance (RATE_LIMIT_MAX, 10 a minute), one start after
    // another, alternating replicas; all addresses at once.
    const bots = await Promise.all(Array.from({ length: attackers }, async (_, a) => {
      const from = `127.0.${1 + Math.floor(a / 200)}.${2 + (a % 200)}`
      const answers = []
      for (let i = 0; i < config.RATE_LIMIT_MAX; i++) answers.push(await start(ports[(a + i) % ports.length]!, from))
      return answers
    }))
    const held = bots.flat().filter((r) => r.status === 200).length
    const key = new TextEncoder().encode(CUSTOMER_SECRET)
    const customers = await Promise.all(Array.from({ length: CUSTOMERS }, async (_, c) => {
      const token = await new SignJWT({ sub: `customer-${c}` }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('5m').sign(key)
      return start(ports[c % ports.length]!, `127.0.9.${2 + c}`, { authorization: `Bearer ${token}` })
    }))
    const served = customers.filter((r) => r.status === 200).length
    const refusedCodes = [...new Set(customers.filter((r) => r.status !== 200).map((r) => r.code))].join(',')
    return { held, served, refusedCodes, connectCalls: sim.stats().received }
  } finally {
    for (const app of apps) await app.close()
    await sim.close()
  }
}

const shared = await redisReachable()
console.log(`chat quota ${QUOTA}, ${CUSTOMERS} verified customers, ${shared ? 'two replicas sharing Redis' : 'one replica (no Redis)'}`)
console.log('| configuration | bot addresses | chats the bots hold | share of the quota | customers served | customers refused with | StartChatContact calls |')
console.log('|---|---:|---:|---:|---:|---|---:|')
for (const attackers of ATTACKERS) {
  for (const { name, env } of CONFIGURATIONS) {
    const r = await scenario(env, attackers, shared)
    console.log(`| ${name} | ${attackers} | ${r.held} | ${Math.round((r.held / QUOTA) * 100)}% | ${r.served} of ${CUSTOMERS} | ${r.refusedCodes || '-'} | ${r.connectCalls} |`)
  }
}
