import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import t from 'tap'
import { createRedis } from '../src/redis.js'
import { freePort } from './helper.js'
import { simulatedConnect, start } from './service-process.js'

// ElastiCache with in-transit encryption is reached over rediss:// with an auth token. Here a local
// redis-server speaks TLS only, with a certificate no public CA signed: the service must verify it
// (refuse without the CA) and use it once Node trusts the CA through its standard NODE_EXTRA_CA_CERTS.

const run = promisify(execFile)
const TOKEN = 'an-auth-token-of-the-kind-elasticache-wants'

/** A TLS-only redis-server in a directory of its own, or the reason it cannot run here. */
async function startTlsRedis () {
  const dir = await mkdtemp(join(tmpdir(), 'ccg-redis-tls-'))
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  try {
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=ccg-test-redis',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert])
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    return { skip: `openssl could not make a certificate (${(err as Error).message})` }
  }
  // tls-port 0 means "no TLS", so a free port is picked first; taken in between, the next one is tried.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const child = spawn('redis-server', ['--port', '0', '--tls-port', String(port), '--tls-cert-file', cert, '--tls-key-file', key,
      '--tls-auth-clients', 'no', '--requirepass', TOKEN, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout?.setEncoding('utf8').on('data', (s: string) => { output += s })
    child.stderr?.setEncoding('utf8').on('data', (s: string) => { output += s })
    const spawned = await Promise.race([once(child, 'spawn').then(() => true), once(child, 'error').then(() => false)])
    if (!spawned) {
      await rm(dir, { recursive: true, force: true })
      return { skip: 'redis-server is not installed' }
    }
    const exited = once(child, 'exit')
    for (const until = Date.now() + 10_000; !/Ready to accept connections/.test(output) && child.exitCode === null && Date.now() < until;) await sleep(20)
    if (/Ready to accept connections/.test(output)) {
      const stop = async () => {
        if (child.exitCode === null) { child.kill('SIGTERM'); await exited }
        await rm(dir, { recursive: true, force: true })
      }
      return { port, ca: await readFile(cert, 'utf8'), caFile: cert, stop }
    }
    child.kill('SIGKILL')
    await exited
    if (!/Address already in use/.test(output)) {
      await rm(dir, { recursive: true, force: true })
      return { skip: `redis-server does not run with TLS here: ${output.trim().split('\n').slice(-2).join(' ')}` }
    }
  }
  await rm(dir, { recursive: true, force: true })
  return { skip: 'no free port for redis-server' }
}

// Before any test is declared: an await between declarations lets tap end the run early.
const redis = await startTlsRedis()
if ('skip' in redis && process.env.CI === 'true') throw new Error(`CI=true: the TLS Redis test must run, but ${redis.skip}`)
const skip = 'skip' in redis ? redis.skip : false
if (!('skip' in redis)) t.teardown(redis.stop)
const tls = 'skip' in redis ? undefined : redis
const url = () => `rediss://:${TOKEN}@127.0.0.1:${tls?.port}`

t.test('rediss:// verifies the server certificate: an unknown CA is refused, never used', { skip }, async (t) => {
  const client = createRedis({ url: url() })
  t.teardown(() => client.disconnect())
  const [err] = await Promise.race([
    once(client, 'error') as Promise<[Error & { code?: string }]>,
    sleep(10_000).then(() => [new Error('no error within 10 s')] as [Error & { code?: string }])
  ])
  t.equal(err.code, 'DEPTH_ZERO_SELF_SIGNED_CERT', 'the TLS handshake refuses a certificate no trusted CA signed')
  await t.rejects(client.ping(), 'no command reaches the server')
})

t.test('the service counts its rate limit in a TLS Redis with an auth token when NODE_EXTRA_CA_CERTS trusts the CA', { skip }, async (t) => {
  const prefix = `ccg-tls-test:${process.pid}:`
  const server = start(t, {
    ...(await simulatedConnect(t)).env,
    NODE_EXTRA_CA_CERTS: tls?.caFile ?? '',
    REDIS_URL: url(),
    REDIS_KEY_PREFIX: prefix,
    RATE_LIMIT_MAX: '2'
  })
  const base = await server.listening()
  const { lines } = server

  const post = () => fetch(`${base}/chat/start`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ParticipantDetails: { DisplayName: 'Ada' } })
  })
  const statuses: number[] = []
  for (let i = 0; i < 3; i++) statuses.push((await post()).status)
  t.same(statuses, [200, 200, 429], 'RATE_LIMIT_MAX=2: the third start from the same address is refused')

  const reader = new Redis(url(), { tls: { ca: tls?.ca }, maxRetriesPerRequest: 0, retryStrategy: () => null })
  reader.on('error', () => {})
  t.teardown(() => reader.disconnect())
  const keys = await reader.keys(`${prefix}rate-limit:*`)
  t.equal(keys.length, 1, 'the counter lives in the TLS Redis')
  t.equal(Number(await reader.get(keys[0] ?? '')), 3, '...and counted all three starts')
  t.notOk(lines.some((l) => String(l.msg).startsWith('Redis unreachable')), 'the service never fell back to counting in memory')
  t.notMatch(JSON.stringify(lines) + server.stderr(), TOKEN, 'the auth token is in no log line')
  await reader.del(...keys)
})
