// `npm start`: read config, build the app, listen, shut down gracefully. Nothing else.
import closeWithGrace from 'close-with-grace'
import { buildApp, type AppDeps } from './app.js'
import { ConfigError, loadConfig, startupSummary, type Config } from './config.js'
import { startMetricsServer, type MetricsServer } from './plugins/metrics.js'
import { readServiceInfo } from './service-info.js'

function readConfig (): Config {
  try {
    return loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`connect-chat-gateway: ${err.message}\n`)
      process.exit(1)
    }
    throw err
  }
}

/**
 * CONNECT_SIMULATOR=true never reaches AWS: the SDK sends to the configured endpoint (a simulator
 * run on its own, as in docker-compose.yml) with fixed credentials. This build holds no simulator
 * to start in-process (`npm run dev` starts one), so without an endpoint it refuses to start.
 */
function simulation (config: Config): AppDeps['connectOverrides'] {
  if (config.AWS_ENDPOINT_URL_CONNECT === undefined && config.AWS_ENDPOINT_URL === undefined) {
    process.stderr.write('connect-chat-gateway: CONNECT_SIMULATOR=true needs AWS_ENDPOINT_URL_CONNECT, the address of a Connect simulator run on its own; `npm run dev` starts one itself\n')
    process.exit(1)
  }
  return { credentials: { accessKeyId: 'SIMULATED', secretAccessKey: 'simulated-secret' } }
}

/** buildApp reads WIDGETS_FILE: a bad file stops start-up like any other bad setting. */
async function build (config: Config, deps: AppDeps) {
  try {
    return await buildApp(config, deps)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`connect-chat-gateway: ${err.message}\n`)
      process.exit(1)
    }
    throw err
  }
}

const config = readConfig()
const simulated = config.CONNECT_SIMULATOR ? simulation(config) : undefined
const service = readServiceInfo()
const app = await build(config, { connectOverrides: simulated, service })
let metricsServer: MetricsServer | undefined

closeWithGrace({
  delay: config.SHUTDOWN_GRACE_MS,
  logger: { error: (msg: unknown) => app.log.error(msg) },
  // close-with-grace shuts down on SIGHUP too; here SIGHUP reloads WIDGETS_FILE (below).
  skip: ['SIGHUP']
}, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'closing after an unexpected error')
  else app.log.info({ signal, graceMs: config.SHUTDOWN_GRACE_MS }, 'shutting down')
  // Readiness turns 503 and the listener closes at once; in-flight requests finish; then the app's
  // onClose hooks close the Connect client and the shared store. Metrics stay scrapable until the end.
  await app.close()
  await metricsServer?.close()
  app.log.info('shut down cleanly')
})

// SIGHUP re-reads WIDGETS_FILE; an invalid file is logged and the profiles in use stay.
process.on('SIGHUP', () => { app.widgets.reload() })

try {
  app.log.info({ service, ...startupSummary(config, app.widgets) }, 'connect-chat-gateway starting')
  for (const warning of config.warnings) app.log.warn(warning)
  if (simulated) {
    app.log.warn({ endpoint: config.AWS_ENDPOINT_URL_CONNECT ?? config.AWS_ENDPOINT_URL },
      'CONNECT_SIMULATOR=true: chats are SIMULATED, nothing reaches Amazon Connect')
  }
  await app.listen({ port: config.PORT, host: config.HOST })
  if (config.metricsPort !== undefined) {
    // In production the OpenAPI document is served here, not on the public port.
    const openapi = config.production ? () => app.swagger() : undefined
    metricsServer = await startMetricsServer(app.metrics.registry, {
      port: config.metricsPort,
      host: config.METRICS_HOST,
      requestTimeoutMs: config.REQUEST_TIMEOUT_MS,
      openapi,
      // The same answers as the public port's probes, from a port its connection budget cannot fill.
      health: async (url) => { const res = await app.inject({ method: 'GET', url }); return { statusCode: res.statusCode, body: res.body } },
      onCollectError: (err) => app.backgroundError('metrics', err)
    })
    app.log.info({ port: metricsServer.port, host: config.METRICS_HOST, openapi: openapi !== undefined }, 'metrics listening on their own port')
  }
} catch (err) {
  app.log.fatal({ err }, 'could not start')
  process.exit(1)
}
