import type { Test } from 'tap'
import { Redis } from 'ioredis'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from './helper.js'

export const redisTestUrl = () => process.env.REDIS_TEST_URL ?? 'redis://127.0.0.1:6379'

/**
 * For `t.test(name, { skip: await redisSkip() }, …)`: false when Redis answers, else the reason to
 * skip. In CI (CI=true) a missing Redis is a failure, never a skip.
 */
export async function redisSkip (): Promise<false | string> {
  const client = new Redis(redisTestUrl(), { lazyConnect: true, connectTimeout: 1_000, maxRetriesPerRequest: 0, retryStrategy: () => null })
  let cause: Error | undefined
  client.on('error', (err: Error) => { cause ??= err })
  try {
    await client.connect()
    await client.ping()
    return false
  } catch (err) {
    const reason = `no Redis at ${redisTestUrl()} (${(cause ?? err as Error).message}); start one or set REDIS_TEST_URL`
    if (process.env.CI === 'true') throw new Error(`CI=true: Redis tests must run, but ${reason}`, { cause: err })
    return reason
  } finally {
    client.disconnect()
  }
}

/** A key prefix no other test shares; its keys are deleted when the test ends. */
export function redisKeyPrefix (t: Test): string {
  const prefix = `ccg-test:${randomUUID()}:`
  t.teardown(async () => {
    const client = new Redis(redisTestUrl(), { maxRetriesPerRequest: 0, retryStrategy: () => null })
    client.on('error', () => {})
    try {
      const keys = await client.keys(`${prefix}*`)
      if (keys.length > 0) await client.del(...keys)
    } catch { /* Redis went away: the keys expire on their own */ } finally {
      client.disconnect()
    }
  })
  return prefix
}

/**
 * A redis-server of the test's own on a free loopback port, so it can be stopped and started again
 * without touching the shared one. Append-only with fsync on every write, like a durable production
 * Redis: what was written before a stop is there after the start. Undefined when redis-server is
 * not installed (the caller skips). Stopped at teardown.
 */
export async function privateRedis (t: Test): Promise<PrivateRedis | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'ccg-redis-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  let port = 0
  let child: ChildProcess | undefined
  async function start (): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      if (port === 0 || attempt > 0) port = await freePort()
      const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes',
        '--appendfsync', 'always', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] })
      let output = ''
      proc.stdout?.setEncoding('utf8').on('data', (s: string) => { output += s })
      proc.stderr?.setEncoding('utf8').on('data', (s: string) => { output += s })
      const spawned = await Promise.race([once(proc, 'spawn').then(() => true), once(proc, 'error').then(() => false)])
      if (!spawned) throw new Error('redis-server is not installed')
      for (const end = Date.now() + 10_000; !/Ready to accept connections/.test(output) && proc.exitCode === null && Date.now() < end;) await sleep(20)
      if (/Ready to accept connections/.test(output)) { child = proc; return }
      proc.kill('SIGKILL')
      await once(proc, 'close').catch(() => {})
      // The same port is kept across a restart when it is still free; a taken one is given up only then.
      if (!/Address already in use/.test(output)) throw new Error(`redis-server did not start: ${output.trim().split('\n').slice(-2).join(' ')}`)
    }
    throw new Error('no free port for redis-server')
  }
  async function stop (): Promise<void> {
    const proc = child
    child = undefined
    if (proc === undefined || proc.exitCode !== null) return
    const closed = once(proc, 'close')
    proc.kill('SIGTERM')
    await closed
  }
  try {
    await start()
  } catch (err) {
    if (/not installed/.test((err as Error).message) && process.env.CI !== 'true') return undefined
    throw err
  }
  t.teardown(stop)
  return { url: () => `redis://127.0.0.1:${port}`, stop, start }
}

export interface PrivateRedis { url (): string; stop (): Promise<void>; start (): Promise<void> }

/**
 * A TCP relay in front of a Redis that holds each of Redis's answers for `delayMs` while `slow` is
 * on: a Redis that is up but slower than the service's deadline. `only` picks the connections held
 * back, by their number in the order they were opened (0 first); all of them without it.
 */
export async function slowRelay (t: Test, target: string) {
  const { hostname, port } = new URL(target)
  let delayMs = 0
  let held: (connection: number) => boolean = () => true
  let opened = 0
  const sockets = new Set<Socket>()
  const server: Server = createServer((client) => {
    const connection = opened++
    const upstream = connect(Number(port || 6379), hostname)
    sockets.add(client).add(upstream)
    client.on('data', (d) => upstream.write(d))
    // Answers keep their order: one held back holds back those after it, even once `slow` is off.
    const queue: Array<{ at: number; data: Buffer }> = []
    let timer: NodeJS.Timeout | undefined
    const flush = () => {
      timer = undefined
      while (queue.length > 0 && queue[0]!.at <= Date.now()) { const { data } = queue.shift()!; if (!client.destroyed) client.write(data) }
      if (queue.length > 0) timer = setTimeout(flush, queue[0]!.at - Date.now()).unref()
    }
    upstream.on('data', (data: Buffer) => {
      queue.push({ at: Math.max(Date.now() + (held(connection) ? delayMs : 0), queue.at(-1)?.at ?? 0), data })
      if (timer === undefined) flush()
    })
    const end = () => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream) }
    for (const s of [client, upstream]) { s.on('close', end); s.on('error', end) }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()) }))
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    slow (ms: number, only: (connection: number) => boolean = () => true) { delayMs = ms; held = only }
  }
}
