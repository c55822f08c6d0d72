/**
 * CLI entry for the Connect simulator, for a benchmark or a manual run in another process:
 *
 *   SIM_PORT=4010 SIM_RATE=5 SIM_BURST=10 npx tsx packages/simulator/src/main.ts
 *
 * (or `node dist/main.js` in the simulator's own image, built by `npm run build` in this package).
 *
 * Prints exactly one JSON line `{"url":"http://127.0.0.1:PORT"}` on stdout once listening, so the
 * parent can read the URL; everything else goes to stderr. The `/__sim/*` control API is on
 * (GET /__sim/stats, POST /__sim/fault with a Fault or null, POST /__sim/rate with
 * {"perSecond", "burst"} or null to change the request-rate quota mid-run, POST /__sim/reset, and
 * the Participant Service's /__sim/participant/*; see docs/simulator.md).
 */
import { queueSettingsFromEnv, SettingsError } from './availability.js'
import { startSimulator, type SimulatorOptions } from './connect.js'

/** Reads a non-negative number from the environment; exits naming the variable when invalid. */
function envNumber (name: string): number | undefined {
  const raw = process.env[name]
  if (raw === undefined || raw.trim() === '') return undefined
  const value = Number(raw)
  if (!Number.isFinite(value) || value < 0) {
    process.stderr.write(`simulator: ${name} must be a non-negative number, got ${JSON.stringify(raw)}\n`)
    process.exit(1)
  }
  return value
}

function optionsFromEnv (): SimulatorOptions {
  const options: SimulatorOptions = {
    port: envNumber('SIM_PORT') ?? 0,
    host: process.env.SIM_HOST || '127.0.0.1',
    latencyMs: envNumber('SIM_LATENCY_MS') ?? 0,
    controlApi: true
  }
  const rate = envNumber('SIM_RATE')
  if (rate !== undefined) options.requestRate = { perSecond: rate, burst: envNumber('SIM_BURST') ?? Math.max(1, rate) }
  const maxActiveChats = envNumber('SIM_MAX_ACTIVE_CHATS')
  if (maxActiveChats !== undefined) options.maxActiveChats = maxActiveChats
  const chatDurationMs = envNumber('SIM_CHAT_DURATION_MS')
  if (chatDurationMs !== undefined) options.chatDurationMs = chatDurationMs
  const forgetEndedAfterMs = envNumber('SIM_FORGET_ENDED_MS')
  if (forgetEndedAfterMs !== undefined) options.forgetEndedAfterMs = forgetEndedAfterMs
  const agent = { joinDelayMs: envNumber('SIM_AGENT_JOIN_DELAY_MS'), typingMs: envNumber('SIM_AGENT_TYPING_MS') }
  options.availability = queueSettingsFromEnv(process.env)
  options.participant = {
    agent: process.env.SIM_AGENT === 'off' ? false : agent,
    publicUrl: process.env.SIM_PUBLIC_URL || undefined
  }
  return options
}

const simulator = await Promise.resolve().then(() => startSimulator(optionsFromEnv())).catch((err: unknown) => {
  // A bad SIM_HOURS, SIM_TIME_ZONE or SIM_AGENTS: said once, naming the setting, without a stack.
  if (!(err instanceof SettingsError)) throw err
  process.stderr.write(`simulator: SIM_HOURS, SIM_TIME_ZONE or SIM_AGENTS: ${err.message}\n`)
  process.exit(1)
})
process.stdout.write(`${JSON.stringify({ url: simulator.url })}\n`)

let closing = false
function shutdown (): void {
  if (closing) return
  closing = true
  // Nothing else holds the event loop once the server is closed, so the process exits with 0.
  simulator.close().catch((err: unknown) => {
    process.stderr.write(`simulator: close failed: ${String(err)}\n`)
    process.exitCode = 1
  })
}
process.once('SIGTERM', shutdown)
process.once('SIGINT', shutdown)
