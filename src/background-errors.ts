import type { FastifyBaseLogger } from 'fastify'
import type { Metrics } from './metrics.js'

/**
 * Errors from work no request waits on: a timer's sample, a Redis client reconnecting. They are
 * counted every time and logged once per source (a dead Redis would otherwise log every 100 ms),
 * and they never end the process: only a signal or a failed start-up does.
 */
export function backgroundErrorReporter (log: FastifyBaseLogger, metrics: Metrics) {
  const logged = new Set<string>()
  return (source: string, err: unknown) => {
    metrics.backgroundErrors.inc({ source })
    if (logged.has(source)) return
    logged.add(source)
    const e = err as { name?: unknown; code?: unknown; message?: unknown } | undefined
    log.warn({ source, error: { name: e?.name, code: e?.code, message: e?.message } },
      'background work failed; the service carries on (logged once per source, counted in ccg_background_errors_total)')
  }
}

export type BackgroundErrorReporter = ReturnType<typeof backgroundErrorReporter>
