// `npm run dev`: the service on the built-in Connect simulator, no AWS account needed, plus the demo
// page on a second origin (DEMO_PORT, default PORT+1) that the dev ALLOWED_ORIGINS lets in.
// Development only: run with tsx, never built into dist/. Its defaults are listed in the README.
import closeWithGrace from 'close-with-grace'
import { fileURLToPath } from 'node:url'
import { buildApp, type App } from '../src/app.js'
import { ConfigError, loadConfig, startupSummary, type Config } from '../src/config.js'
import { queueSettingsFromEnv, startSimulator } from '@connect-chat-gateway/simulator'
import { startDemoServer, type DemoServer } from './server.js'

function fail (message: string): never {
  process.stderr.write(`connect-chat-gateway: ${message}\n`)
  process.exit(1)
}

function readConfig (source: Record<string, string | undefined>): Config {
  try {
    // A developer's machine: loopback only, unless HOST says otherwise.
    // Production is the default everywhere else; NODE_ENV=development is what relaxes it here.
    return loadConfig({ ...source, NODE_ENV: source.NODE_ENV || 'development', HOST: source.HOST || '127.0.0.1', CONNECT_SIMULATOR: 'true' })
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message)
    throw err
  }
}

/** DEMO_PORT is a development setting: the production configuration never sees it. */
function demoPort (raw: string | undefined, gatewayPort: number): number {
  if (raw === undefined || raw === '') return gatewayPort === 0 ? 0 : gatewayPort + 1
  if (!/^\d{1,5}$/.test(raw.trim()) || Number(raw) > 65535) fail(`DEMO_PORT: "${raw.slice(0, 20)}" is not a port (0..65535; 0 picks a free one)`)
  return Number(raw)
}

// The first read only validates PORT and HOST; the allowed origins depend on the demo's port.
const ports = readConfig(process.env)
let gatewayPort = ports.PORT
// Chats end from the page, from the agent ("bye") or after 30 minutes. The control API lets a
// developer inject faults while trying a widget (docs/simulator.md).
// SIM_HOURS, SIM_TIME_ZONE and SIM_AGENTS shape its queue from the start, as for the standalone simulator.
let availability
try { availability = queueSettingsFromEnv(process.env) } catch (err) { fail((err as Error).message) }
const simulator = await startSimulator({ chatDurationMs: 30 * 60_000, controlApi: true, availability })
  .catch((err: unknown) => fail(`SIM_HOURS or SIM_TIME_ZONE: ${(err as Error).message}`))
let demo: DemoServer
let app: App | undefined
try {
  demo = await startDemoServer({
    port: demoPort(process.env.DEMO_PORT, ports.PORT),
    host: ports.HOST,
    // Only these two hostnames are allowed origins; anything else (a LAN address) gets localhost.
    gatewayUrl: (pageHostname) => `http://${pageHostname === '127.0.0.1' ? '127.0.0.1' : 'localhost'}:${gatewayPort}`,
    // The page's chatjs talks to the simulated Participant Service, on the simulator's own port.
    participantUrl: () => simulator.url,
    widgets: () => ['default', ...(app?.widgets.ids() ?? [])]
  })
} catch (err) {
  fail(`the demo page could not listen (${(err as Error).message}); set DEMO_PORT to a free port`)
}

const config = readConfig({
  ALLOWED_ORIGINS: `http://localhost:${demo.port},http://127.0.0.1:${demo.port}`,
  ALLOWED_ATTRIBUTES: 'topic,language',
  // The simulator's queue: the demo page asks its availability (docs/simulator.md sets its hours and agents).
  CONNECT_QUEUE_ID: 'simulated-queue',
  // Exploring sends many starts, invalid ones included; production's 10 a minute gets in the way.
  RATE_LIMIT_MAX: '100',
  // Two sample widgets for the demo page on its default port (docs/widgets.md).
  WIDGETS_FILE: fileURLToPath(new URL('widgets.json', import.meta.url)),
  ...process.env
})
try {
  app = await buildApp(config, {
    connectOverrides: {
      endpoint: simulator.url,
      credentials: { accessKeyId: 'SIMULATED', secretAccessKey: 'simulated-secret' }
    }
  })
} catch (err) {
  if (err instanceof ConfigError) fail(err.message)
  throw err
}
const gateway = app
// The same as `npm start`: SIGHUP re-reads WIDGETS_FILE.
process.on('SIGHUP', () => { gateway.widgets.reload() })
app.log.info(startupSummary(config, app.widgets), 'connect-chat-gateway starting')
for (const warning of config.warnings) app.log.warn(warning)
app.log.warn({ simulator: simulator.url }, 'CONNECT_SIMULATOR=true: chats are SIMULATED, nothing reaches Amazon Connect')
app.addHook('onClose', async () => {
  await demo.close()
  await simulator.close()
})

// The same shutdown as `npm start`: in-flight starts finish, then the demo page and the simulator close.
closeWithGrace({
  delay: config.SHUTDOWN_GRACE_MS,
  logger: { error: (msg: unknown) => app.log.error(msg) },
  // close-with-grace shuts down on SIGHUP too; here SIGHUP reloads WIDGETS_FILE (below).
  skip: ['SIGHUP']
}, async ({ err }) => {
  if (err) app.log.error({ err }, 'closing after an unexpected error')
  await app.close()
})
await app.listen({ port: config.PORT, host: config.HOST })
gatewayPort = (app.server.address() as { port: number }).port

const host = ['0.0.0.0', '::'].includes(config.HOST) ? 'localhost' : config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST
process.stdout.write([
  '',
  '  connect-chat-gateway is running. Chats are SIMULATED: nothing reaches Amazon Connect.',
  `    gateway    http://${host}:${gatewayPort}/chat/start`,
  `    demo page  http://${host}:${demo.port}/`,
  `    simulator  ${simulator.url} (Participant Service and control API: docs/simulator.md)`,
  `  Allowed origins: ${config.allowedOrigins.join(', ') || '(none)'}`,
  `  Widgets: ${['default', ...app.widgets.ids()].join(', ')}${config.WIDGETS_FILE ? ` (${config.WIDGETS_FILE}; SIGHUP reloads it)` : ''}`,
  ''
].join('\n') + '\n')
