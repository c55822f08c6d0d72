import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError, loadConfig, type Config } from './config.js'

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

const config = readConfig()
const app = await buildApp(config)

closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'closing after an unexpected error')
  else app.log.info({ signal }, 'shutting down')
  await app.close()
})

await app.listen({ port: config.PORT, host: config.HOST })
