/**
 * Whether chatting makes sense now, per queue: opening hours (DescribeQueue, then
 * GetEffectiveHoursOfOperations, overrides included) and agents (GetCurrentMetricData, channel
 * CHAT). One replica polls Connect for the whole deployment, holding a shared lock (Redis, DynamoDB);
 * the others read what it wrote. Requests are answered from memory and never call Connect or wait on
 * shared state.
 *
 * Why absolute opening intervals rather than an open flag: an answer is worked out at the moment it
 * is asked, so 09:00 opens at 09:00 on every replica, not at the next poll; and "back at" is known
 * from the same data.
 */
import { randomUUID } from 'node:crypto'
import {
  DescribeQueueCommand, GetCurrentMetricDataCommand, GetEffectiveHoursOfOperationsCommand, type ConnectClient
} from '@aws-sdk/client-connect'
import { isoInZone, openIntervals, utcDate, type Interval } from './hours.js'

export interface QueueRef { instanceId: string; queueId: string }
export const queueKey = (queue: QueueRef) => `${queue.instanceId}/${queue.queueId}`

export type Operation = 'DescribeQueue' | 'GetEffectiveHoursOfOperations' | 'GetCurrentMetricData'

interface Schedule { at: number; enabled: boolean; timeZone: string; intervals: Interval[]; until: number }
interface Agents { at: number; agentsAvailable: number; agentsStaffed: number; contactsInQueue: number }
/** What is known of one queue; shared between replicas as JSON. */
export interface QueueState {
  schedule?: Schedule
  agents?: Agents
  /** When the last GetCurrentMetricData for this queue failed; cleared by the next success. */
  failedAt?: number
  /** When its schedule was last asked for, successfully or not: the stalest goes first. */
  scheduleTriedAt?: number
}
export type AvailabilityState = Record<string, QueueState>

export interface Availability {
  open: boolean
  reason: 'open' | 'closed' | 'no_agents' | 'unknown'
  agentsAvailable?: number
  contactsInQueue?: number
  /** ISO 8601 with the hours' own offset: 2026-12-07T09:00:00+01:00. */
  nextOpen?: string
  /** With `unknown`: how old the values given are, in seconds. */
  ageSeconds?: number
}

export interface AvailabilityEvents {
  /** One call toward Connect (before its answer). */
  called? (operation: Operation): void
  /** A call failed; `queue` when it was about one queue. */
  failed? (operation: Operation, errorName: string, queue?: string): void
  /** One poll of Connect by this replica, and whether every call in it succeeded. */
  polled? (ok: boolean): void
  /** Shared state did not answer: this replica polls alone until it does. */
  redisFailed? (error: unknown): void
  /** Anything else a tick threw: reported, survived. */
  error? (error: unknown): void
}

export interface AvailabilityPollerOptions {
  /** The client for these three read calls (the chat-start client's attempts and metrics stay its own). */
  client: ConnectClient
  /** The queues to watch, asked at each tick (a widget reload may change them). */
  queues: () => QueueRef[]
  refreshMs: number
  /** The deployment's lock and last state; without it this replica polls on its own. */
  share?: AvailabilityShare
  now?: () => number
  events?: AvailabilityEvents
  /**
   * No timer (a Lambda execution environment, frozen between requests): the requests that read
   * availability start a round when the last began refreshMs ago, and wait for it at most this long.
   */
  refreshOnRequest?: { waitMs: number }
}

/**
 * The poller's lock and the last known state, shared by the replicas (Redis, DynamoDB, or this
 * process alone). Any call may reject: the poller then polls on its own.
 */
export interface AvailabilityShare {
  /** Takes the lock for `token` (free, expired or already ours) for `ttlMs`; false when another holds it. */
  lock (token: string, ttlMs: number): Promise<boolean>
  /** Hands the lock back, if it is still `token`'s. */
  unlock (token: string): Promise<void>
  /** The state last written (JSON), or undefined. */
  read (): Promise<string | undefined>
  /** Writes the state for every replica, kept for `ttlMs`. */
  write (json: string, ttlMs: number): Promise<void>
}

/** Hours change rarely: each queue's are read again this often, a few queues per tick. */
export const SCHEDULE_REFRESH_MS = 5 * 60_000
/** DescribeQueue + GetEffectiveHoursOfOperations pairs per tick: at most 4 of those calls every refresh. */
export const SCHEDULES_PER_TICK = 2
/** GetCurrentMetricData takes up to 100 queues in one call. */
const QUEUES_PER_METRICS_CALL = 100
/** Days of hours asked for (from yesterday, in UTC, so every zone's today is covered). */
const HORIZON_DAYS = 8
/** The last good values are kept this long in shared state, for the `unknown` answers of a new deployment. */
const STATE_TTL_MS = 24 * 3_600_000

const errorName = (err: unknown) => (err as { name?: string } | undefined)?.name ?? 'Error'
const count = (value: number | undefined) => Number.isFinite(value) ? Math.max(0, Math.round(value!)) : 0

/** The answer for one queue at `now`, from what is known of it. */
export function availabilityAt (state: QueueState | undefined, now: number, staleAfterMs: number): Availability {
  const agents = state?.agents
  const values = agents ? { agentsAvailable: agents.agentsAvailable, contactsInQueue: agents.contactsInQueue } : {}
  const known = state && agents ? fromHours(state.schedule, agents, now) : undefined
  const fresh = known !== undefined && state?.failedAt === undefined && agents !== undefined && now - agents.at <= staleAfterMs
  if (fresh) return { ...known, ...values }
  // Unknown: the last values and what they would say now, with their age; with none, open (a broken
  // poller must not hide the chat of a deployment that was never known to be closed).
  return {
    open: known?.open ?? true,
    reason: 'unknown',
    ...values,
    ...(known?.nextOpen ? { nextOpen: known.nextOpen } : {}),
    ...(agents ? { ageSeconds: Math.max(0, Math.round((now - agents.at) / 1000)) } : {})
  }
}

function fromHours (schedule: Schedule | undefined, agents: Agents, now: number): Pick<Availability, 'open' | 'reason' | 'nextOpen'> | undefined {
  if (!schedule || now >= schedule.until) return undefined
  if (!schedule.enabled) return { open: false, reason: 'closed' }
  const openNow = schedule.intervals.some(([from, to]) => from <= now && now < to)
  if (!openNow) {
    const next = schedule.intervals.find(([from]) => from > now)
    return { open: false, reason: 'closed', ...(next ? { nextOpen: isoInZone(next[0], schedule.timeZone) } : {}) }
  }
  return agents.agentsStaffed === 0 ? { open: false, reason: 'no_agents' } : { open: true, reason: 'open' }
}

export class AvailabilityPoller {
  private state: AvailabilityState = {}
  private readonly token = randomUUID()
  /** The poller's clock: answers are worked out for this moment. */
  readonly now: () => number
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private roundStartedAt = -Infinity
  private closed = false
  /** This replica polled Connect at its last tick (it held the lock, or had no shared state to ask). */
  polling = false

  constructor (private readonly options: AvailabilityPollerOptions) {
    this.now = options.now ?? Date.now
  }

  /** A queue's answer now, from memory. */
  availability (queue: QueueRef): Availability {
    return availabilityAt(this.state[queueKey(queue)], this.now(), this.staleAfterMs)
  }

  /** Older than this, or after a failed poll, values are answered as `unknown`. */
  get staleAfterMs (): number {
    return 4 * this.options.refreshMs
  }

  /** The first tick now, then one every refreshMs after the previous one ends. */
  start (): Promise<void> {
    const loop = async () => {
      await this.tick()
      if (!this.closed) this.timer = setTimeout(loop, this.options.refreshMs).unref()
    }
    return loop()
  }

  /**
   * With refreshOnRequest: a round when the values are due, waited for within its bound (a slower
   * round goes on and serves the next request). Without it, nothing: the timer keeps them fresh.
   */
  async fresh (): Promise<void> {
    const bound = this.options.refreshOnRequest
    if (!bound || this.closed) return
    if (this.running === undefined && this.now() - this.roundStartedAt < this.options.refreshMs) return
    let timer: NodeJS.Timeout | undefined
    await Promise.race([this.tick(), new Promise<void>((resolve) => { timer = setTimeout(resolve, bound.waitMs) })])
    clearTimeout(timer)
  }

  /** One round: poll Connect when this replica holds the lock (or has no shared state), else read the shared state. */
  tick (): Promise<void> {
    if (this.running === undefined) this.roundStartedAt = this.now()
    this.running ??= this.round().catch((err: unknown) => this.options.events?.error?.(err)).finally(() => { this.running = undefined })
    return this.running
  }

  async close (): Promise<void> {
    this.closed = true
    clearTimeout(this.timer)
    await this.running
    // Handing the lock back lets another replica take over at its next tick, not after the TTL.
    if (this.polling && this.options.share) await this.options.share.unlock(this.token).catch(() => {})
  }

  private async round (): Promise<void> {
    const { share, events } = this.options
    if (!share) {
      this.polling = true
      this.state = await this.poll(this.state)
      return
    }
    let holder: boolean
    try {
      holder = await share.lock(this.token, 2 * this.options.refreshMs)
      const shared = await share.read()
      if (shared !== undefined) this.state = JSON.parse(shared) as AvailabilityState
    } catch (err) {
      // Without shared state every replica polls on its own: more calls, but answers stay true.
      events?.redisFailed?.(err)
      this.polling = true
      this.state = await this.poll(this.state)
      return
    }
    this.polling = holder
    if (!holder) return
    this.state = await this.poll(this.state)
    await share.write(JSON.stringify(this.state), STATE_TTL_MS).catch((err: unknown) => events?.redisFailed?.(err))
  }

  /** One poll of Connect: agents for every queue, hours for the stalest few. */
  private async poll (previous: AvailabilityState): Promise<AvailabilityState> {
    const queues = this.options.queues()
    const next: AvailabilityState = {}
    for (const queue of queues) next[queueKey(queue)] = { ...previous[queueKey(queue)] }
    let ok = await this.pollAgents(queues, next)
    const now = this.now()
    const due = queues
      .filter((q) => { const s = next[queueKey(q)]!; return !s.schedule || now - s.schedule.at >= SCHEDULE_REFRESH_MS || now >= s.schedule.until - 86_400_000 })
      .sort((a, b) => (next[queueKey(a)]!.scheduleTriedAt ?? 0) - (next[queueKey(b)]!.scheduleTriedAt ?? 0))
      .slice(0, SCHEDULES_PER_TICK)
    for (const queue of due) ok = await this.pollSchedule(queue, next[queueKey(queue)]!) && ok
    this.options.events?.polled?.(ok)
    return next
  }

  private async pollAgents (queues: QueueRef[], next: AvailabilityState): Promise<boolean> {
    const byInstance = new Map<string, string[]>()
    for (const q of queues) byInstance.set(q.instanceId, [...(byInstance.get(q.instanceId) ?? []), q.queueId])
    let ok = true
    for (const [instanceId, ids] of byInstance) {
      for (let i = 0; i < ids.length; i += QUEUES_PER_METRICS_CALL) {
        const chunk = ids.slice(i, i + QUEUES_PER_METRICS_CALL)
        const at = this.now()
        try {
          this.options.events?.called?.('GetCurrentMetricData')
          const { MetricResults = [] } = await this.options.client.send(new GetCurrentMetricDataCommand({
            InstanceId: instanceId,
            Filters: { Queues: chunk, Channels: ['CHAT'] },
            Groupings: ['QUEUE'],
            CurrentMetrics: (['AGENTS_AVAILABLE', 'AGENTS_STAFFED', 'CONTACTS_IN_QUEUE'] as const).map((Name) => ({ Name, Unit: 'COUNT' as const }))
          }))
          // Connect leaves out a queue with nothing to report: no agents, nothing waiting.
          for (const queueId of chunk) {
            const values = new Map((MetricResults.find((r) => r.Dimensions?.Queue?.Id === queueId)?.Collections ?? []).map((c) => [c.Metric?.Name, c.Value]))
            const state = next[queueKey({ instanceId, queueId })]!
            state.agents = { at, agentsAvailable: count(values.get('AGENTS_AVAILABLE')), agentsStaffed: count(values.get('AGENTS_STAFFED')), contactsInQueue: count(values.get('CONTACTS_IN_QUEUE')) }
            delete state.failedAt
          }
        } catch (err) {
          ok = false
          this.options.events?.failed?.('GetCurrentMetricData', errorName(err))
          for (const queueId of chunk) next[queueKey({ instanceId, queueId })]!.failedAt = at
        }
      }
    }
    return ok
  }

  private async pollSchedule (queue: QueueRef, state: QueueState): Promise<boolean> {
    const now = this.now()
    state.scheduleTriedAt = now
    let operation: Operation = 'DescribeQueue'
    try {
      this.options.events?.called?.(operation)
      const { Queue } = await this.options.client.send(new DescribeQueueCommand({ InstanceId: queue.instanceId, QueueId: queue.queueId }))
      const enabled = Queue?.Status !== 'DISABLED'
      let timeZone = 'UTC'
      let intervals: Interval[] = []
      if (enabled && Queue?.HoursOfOperationId) {
        operation = 'GetEffectiveHoursOfOperations'
        this.options.events?.called?.(operation)
        const hours = await this.options.client.send(new GetEffectiveHoursOfOperationsCommand({
          InstanceId: queue.instanceId, HoursOfOperationId: Queue.HoursOfOperationId, FromDate: utcDate(now, -1), ToDate: utcDate(now, HORIZON_DAYS)
        }))
        timeZone = hours.TimeZone ?? 'UTC'
        intervals = openIntervals((hours.EffectiveHoursOfOperationList ?? []).filter((d) => d.Date !== undefined).map((d) => ({
          date: d.Date!,
          slices: (d.OperationalHours ?? []).map((h) => ({
            start: { hours: h.Start?.Hours ?? 0, minutes: h.Start?.Minutes ?? 0 },
            end: { hours: h.End?.Hours ?? 0, minutes: h.End?.Minutes ?? 0 }
          }))
        })), timeZone)
      }
      // The last day asked for is covered in every zone until 10:00 UTC of it (when UTC+14 ends that day).
      state.schedule = { at: now, enabled, timeZone, intervals, until: Date.parse(`${utcDate(now, HORIZON_DAYS)}T00:00:00Z`) + 10 * 3_600_000 }
      return true
    } catch (err) {
      // A time zone this runtime does not know is a RangeError from Intl: the hours cannot be read either.
      this.options.events?.failed?.(operation, errorName(err), queue.queueId)
      return false
    }
  }
}
