// `npm run dev`: the service on the built-in Connect simulator; no AWS account needed.
import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { startSimulator } from './connect/simulator.js'

const port = Number(process.env.PORT ?? 3000)
const demoPort = Number(process.env.DEMO_PORT ?? port + 1)
let config
try {
  config = loadConfig({
    ALLOWED_ORIGINS: `http://localhost:${demoPort},http://127.0.0.1:${demoPort}`,
    ALLOWED_ATTRIBUTES: 'topic,language',
    ...process.env,
    CONNECT_SIMULATOR: 'true'
  })
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`connect-chat-gateway: ${err.message}\n`)
    process.exit(1)
  }
  throw err
}

const simulator = await startSimulator({ chatDurationMs: 120_000 })
const app = await buildApp(config, {
  connectOverrides: {
    endpoint: simulator.url,
    credentials: { accessKeyId: 'SIMULATED', secretAccessKey: 'simulated-secret' }
  }
})
app.log.warn({ simulator: simulator.url }, 'CONNECT_SIMULATOR=true: chats are SIMULATED, nothing reaches Amazon Connect')
app.addHook('onClose', async () => { await simulator.close() })

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => { void app.close().then(() => process.exit(0)) })
}
await app.listen({ port: config.PORT, host: config.HOST })
