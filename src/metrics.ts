import type { Logger } from 'pino'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { ChatQuotaEvents } from './chat/quota.js'
import type { AvailabilityEvents } from './connect/availability.js'
import type { ChatStarterOptions } from './connect/chat-starter.js'
import type { RetryObserver } from './connect/client.js'
import type { PacerEvents } from './connect/pacer.js'

/**
 * Every metric the service exports, on a registry of its own per app (tests build several apps in
 * one process). Names are part of the operator contract: see README "Operating it".
 */
export interface MetricSources { upstreamInFlight?: () => number }

export function createMetrics (sources: MetricSources = {}) {
  let liveChats: (() => Promise<{ anonymous: number; verified: number }>) | undefined
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const registers = [registry]
  const metrics = {
    registry,
    // `widget`: a profile id from WIDGETS_FILE, never what a client sent; absent for the default profile.
    chatStarts: new Counter({ name: 'ccg_chat_starts_total', help: 'Chat starts by outcome (started, or the error code) and widget', labelNames: ['outcome', 'widget'] as const, registers }),
    chatStartDuration: new Histogram({
      name: 'ccg_chat_start_duration_seconds', help: 'Time to start a chat, pacing and retries included', labelNames: ['outcome', 'widget'] as const,
      buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20], registers
    }),
    upstreamAttempts: new Counter({ name: 'ccg_upstream_attempts_total', help: 'HTTP attempts of StartChatContact, retries included', registers }),
    upstreamRetries: new Counter({ name: 'ccg_upstream_retries_total', help: 'StartChatContact retries by the error that caused them', labelNames: ['error'] as const, registers }),
    upstreamErrors: new Counter({ name: 'ccg_upstream_errors_total', help: 'Failed chat starts by upstream error type', labelNames: ['type'] as const, registers }),
    upstreamInFlight: new Gauge({
      name: 'ccg_upstream_in_flight', help: 'StartChatContact calls in progress in this process', registers,
      collect () { if (sources.upstreamInFlight) this.set(sources.upstreamInFlight()) }
    }),
    httpDuration: new Histogram({
      name: 'ccg_http_request_duration_seconds', help: 'HTTP request latency', labelNames: ['method', 'route', 'status_code'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers
    }),
    requestsRefused: new Counter({ name: 'ccg_requests_refused_total', help: 'Requests this service refused on its own (4xx), by error code in lower case; every one, whether logged or summarised', labelNames: ['code'] as const, registers }),
    rateLimited: new Counter({ name: 'ccg_rate_limited_total', help: 'Requests refused by the per-client rate limit', labelNames: ['widget'] as const, registers }),
    originRefused: new Counter({ name: 'ccg_origin_refused_total', help: 'Requests refused because their Origin is not allowed', labelNames: ['widget'] as const, registers }),
    widgetNotFound: new Counter({ name: 'ccg_widget_not_found_total', help: 'Chat starts for a widget id no profile has (404)', registers }),
    widgetReloads: new Counter({ name: 'ccg_widget_reloads_total', help: 'WIDGETS_FILE reloads (SIGHUP) by result: applied, or refused (old profiles kept)', labelNames: ['result'] as const, registers }),
    widgetProfiles: new Gauge({ name: 'ccg_widget_profiles', help: 'Widget profiles in use, the default one included', registers }),
    stateUnavailable: new Counter({ name: 'ccg_state_unavailable_total', help: 'Requests refused (503) because the shared store (Redis, DynamoDB) could not confirm state they depend on', labelNames: ['use'] as const, registers }),
    redisFailOpen: new Counter({ name: 'ccg_redis_fail_open_total', help: 'Decisions taken without the shared store (Redis, DynamoDB) because it was unreachable', labelNames: ['use'] as const, registers }),
    pacingWait: new Histogram({
      name: 'ccg_pacing_wait_seconds', help: 'Time a chat start waited for an upstream pacing token',
      buckets: [0, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10], registers
    }),
    pacingQueue: new Gauge({ name: 'ccg_pacing_queue_length', help: 'Chat starts waiting for a pacing token in this process', registers }),
    pacingShed: new Counter({ name: 'ccg_pacing_shed_total', help: 'Chat starts answered 503 at once because no token could come before their deadline', registers }),
    pacingTokens: new Counter({ name: 'ccg_pacing_tokens_total', help: 'Pacing tokens granted', registers }),
    connectionsRefused: new Counter({ name: 'ccg_connections_refused_total', help: 'Connections closed on arrival: past the per-client or the total cap', labelNames: ['reason'] as const, registers }),
    chatStartsAbandoned: new Counter({
      name: 'ccg_chat_starts_abandoned_total', help: 'Chat starts whose caller left: waiting (no further Connect call) or on_the_wire (the attempt finished)',
      labelNames: ['stage'] as const, registers
    }),
    backgroundErrors: new Counter({ name: 'ccg_background_errors_total', help: 'Errors in timers and background work, survived', labelNames: ['source'] as const, registers }),
    pacingSlowdowns: new Counter({ name: 'ccg_pacing_slowdowns_total', help: 'Times pacing slowed down because Connect throttled anyway', registers }),
    pacingRate: new Gauge({ name: 'ccg_pacing_rate', help: 'StartChatContact calls per second pacing aims at for the whole deployment, as learned from throttling', registers }),
    availabilityCalls: new Counter({ name: 'ccg_availability_calls_total', help: 'Calls this replica made to Connect for availability, by operation', labelNames: ['operation'] as const, registers }),
    availabilityPolls: new Counter({ name: 'ccg_availability_polls_total', help: 'Availability polls of Connect by this replica, by result (ok, failed: at least one call failed)', labelNames: ['result'] as const, registers }),
    availabilityErrors: new Counter({ name: 'ccg_availability_errors_total', help: 'Failed availability calls by operation and error', labelNames: ['operation', 'error'] as const, registers }),
    liveChats: new Gauge({
      name: 'ccg_live_chats', help: 'Chats the deployment counts as live on Connect (starting ones included), by caller: anonymous or verified', labelNames: ['caller'] as const, registers,
      async collect () {
        if (!liveChats) return
        const counts = await liveChats()
        this.set({ caller: 'anonymous' }, counts.anonymous)
        this.set({ caller: 'verified' }, counts.verified)
      }
    }),
    liveChatsFreed: new Counter({ name: 'ccg_live_chats_freed_total', help: 'Counted chats Connect said had ended (DescribeContact), freed before a refusal', registers }),
    chatsEnded: new Counter({ name: 'ccg_chats_ended_total', help: 'POST /chat/end by outcome: stopped, or already_ended', labelNames: ['outcome'] as const, registers }),
    /** Where ccg_live_chats reads its counts (the live-chat ledger, built after the metrics). */
    liveChatsSource (source: () => Promise<{ anonymous: number; verified: number }>) { liveChats = source }
  }
  // The default profile's refusal counters read 0 from the start, as they did before they had a label.
  metrics.rateLimited.inc(0)
  metrics.originRefused.inc(0)
  return metrics
}

export type Metrics = ReturnType<typeof createMetrics>

// --- What the Connect side reports, turned into metrics and log lines ------------------------------

/** The chat quota: chats Connect said had ended, and one log line per loss and return of shared state. */
export function quotaObserver (metrics: Metrics, log: Pick<Logger, 'info' | 'warn'>): ChatQuotaEvents {
  return {
    freed: () => metrics.liveChatsFreed.inc(),
    describeFailed: (err) => log.warn({ reason: (err as { code?: string })?.code ?? 'unknown' }, 'DescribeContact failed: the chat stays counted'),
    decidedAlone: () => metrics.redisFailOpen.inc({ use: 'live_chats' }),
    stateLost: (err) => {
      log.warn({ reason: (err as Error)?.message }, 'Redis unreachable: live chats are counted by each replica alone (each limit per replica) until it is back')
    },
    stateBack: () => log.info('Redis reachable again: live chats are counted for every replica again')
  }
}

type Log = Pick<Logger, 'info' | 'warn'>

/** Pacing: waits, queue, shedding, and one log line per change of the learned rate. */
export function pacerObserver (metrics: Metrics, log: Log): PacerEvents {
  return {
    granted: (ms) => { metrics.pacingTokens.inc(); metrics.pacingWait.observe(ms / 1000) },
    queue: (length) => metrics.pacingQueue.set(length),
    shed: () => metrics.pacingShed.inc(),
    rateChanged: (rate, { reason, configured, measured, replanned, shed }) => {
      metrics.pacingRate.set(rate)
      const fields = { rate: Number(rate.toFixed(3)), configuredRate: configured, ...(measured === undefined ? {} : { acceptedPerSecond: measured }), replanned, shed }
      if (reason === 'recovering') {
        log.info(fields, 'pacing rate raised: no throttling lately')
      } else {
        metrics.pacingSlowdowns.inc()
        log.warn(fields, reason === 'throttled'
          ? 'Connect throttled a paced call; pacing rate lowered to what Connect accepts'
          : 'another replica lowered the pacing rate')
      }
    },
    redisFailed: () => metrics.redisFailOpen.inc({ use: 'pacing' }),
    fallback: (alone, share) => alone
      ? log.warn(share, 'pacing without Redis: this replica paces alone at its share of the rate')
      : log.info('pacing shared through Redis again')
  }
}

/** The availability poller: calls, polls and errors; one log line when polls start failing and one when they recover. */
export function availabilityObserver (metrics: Metrics, log: Log): AvailabilityEvents {
  let failing = false
  let lastError: Record<string, string> = {}
  return {
    called: (operation) => metrics.availabilityCalls.inc({ operation }),
    failed: (operation, error, queue) => {
      metrics.availabilityErrors.inc({ operation, error })
      lastError = { operation, errorName: error, ...(queue === undefined ? {} : { queue }) }
    },
    polled: (ok) => {
      metrics.availabilityPolls.inc({ result: ok ? 'ok' : 'failed' })
      if (ok === !failing) return
      failing = !ok
      if (failing) log.warn(lastError, 'availability: Connect did not answer; /chat/availability says unknown for the queues concerned until it does')
      else log.info('availability: Connect answers again')
    },
    redisFailed: () => metrics.redisFailOpen.inc({ use: 'availability' })
  }
}

/**
 * The `widget` label of a named profile. The default profile's series carry none, so a deployment
 * without WIDGETS_FILE exports exactly the series it always did.
 */
export function widgetLabel (widget: string | undefined): { widget?: string } {
  return widget === undefined ? {} : { widget }
}

/** Every HTTP attempt and retry toward Connect. */
export function retryObserver (metrics: Metrics): RetryObserver {
  return {
    onAttempt: () => metrics.upstreamAttempts.inc(),
    onRetry: (error) => metrics.upstreamRetries.inc({ error })
  }
}

/** How each chat start ended, and where its caller left. */
export function starterObserver (metrics: Metrics): Pick<ChatStarterOptions, 'onOutcome' | 'onAbandoned'> {
  return {
    onAbandoned: (stage) => metrics.chatStartsAbandoned.inc({ stage }),
    onOutcome: (outcome) => {
      const labels = { outcome: outcome.ok ? 'started' : outcome.error.code.toLowerCase(), ...widgetLabel(outcome.widget) }
      metrics.chatStarts.inc(labels)
      metrics.chatStartDuration.observe(labels, outcome.durationMs / 1000)
      if (!outcome.ok && outcome.error.upstream) metrics.upstreamErrors.inc({ type: outcome.error.upstream.errorName })
    }
  }
}
