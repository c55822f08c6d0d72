import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { buildApp, type App, type AppDeps } from '../src/app.js'
import { loadConfig, type Config } from '../src/config.js'
import { startSimulator, type ConnectSimulator, type SimulatorOptions } from '@connect-chat-gateway/simulator'

export const ORIGIN = 'https://shop.example.com'

export interface Harness { app: App; sim: ConnectSimulator; config: Config; logs: () => string }

/**
 * The real app and the real SDK, over HTTP, against a fresh simulator; both closed after the test.
 * `simulator` shares one already running (several replicas, one Connect); its owner closes it.
 */
export async function build (t: Test, env: Record<string, string> = {}, options: { sim?: SimulatorOptions; simulator?: ConnectSimulator; deps?: AppDeps } = {}): Promise<Harness> {
  const sim = options.simulator ?? await startSimulator(options.sim)
  const config = loadConfig({
    // Production is the default; the tests that mean it say so.
    NODE_ENV: 'development',
    CONNECT_SIMULATOR: 'true',
    LOG_LEVEL: 'info',
    ALLOWED_ORIGINS: ORIGIN,
    ALLOWED_ATTRIBUTES: 'topic,language',
    CHAT_START_TIMEOUT_MS: '5000',
    CONNECT_ATTEMPT_TIMEOUT_MS: '1000',
    // Tests of the per-client limit and the chat quota set their own; the rest must not trip over them.
    RATE_LIMIT_MAX: '100000',
    MAX_OPEN_CHATS_PER_CALLER: '1000000',
    CONNECT_MAX_ACTIVE_CHATS: '1000000',
    ...env
  })
  const chunks: string[] = []
  const logStream = { write (chunk: string) { chunks.push(chunk); return true } } as unknown as NodeJS.WritableStream
  const app = await buildApp(config, {
    logStream,
    connectOverrides: { endpoint: sim.url, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' } },
    ...options.deps
  })
  t.teardown(async () => {
    await app.close()
    if (!options.simulator) await sim.close()
  })
  return { app, sim, config, logs: () => chunks.join('') }
}

export const validBody = (extra: Record<string, unknown> = {}) => ({ ParticipantDetails: { DisplayName: 'Ann' }, ...extra })

export function startChat (app: App, body: unknown, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url: '/chat/start',
    headers: { 'content-type': 'application/json', ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body)
  })
}

/** The value of one sample line of Prometheus text, e.g. `ccg_chat_starts_total{outcome="started"}`; undefined when absent. */
export function metricSample (text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

/** Polls until `check` holds; fails naming `what` after `ms`. A bounded wait for an event, not a timing assertion. */
export async function until (what: string, check: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  for (const end = Date.now() + ms; !(await check());) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

/** Listens on a free loopback port, for tests that need real sockets; the harness closes the app. */
export async function listenLocal (app: App): Promise<number> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as { port: number }).port
}

/** A loopback port nothing listens on (free a moment ago). */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}
