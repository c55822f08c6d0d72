/**
 * The three read APIs a chat widget's availability comes from, as the simulator speaks them:
 * DescribeQueue (`GET /queues/{InstanceId}/{QueueId}`), GetEffectiveHoursOfOperations
 * (`GET /effective-hours-of-operations/{InstanceId}/{HoursOfOperationId}?fromDate&toDate`) and
 * GetCurrentMetricData (`POST /metrics/current/{InstanceId}`). Each queue has its own opening hours
 * (a weekly schedule in a time zone, plus dated overrides) and its own agents, set through the
 * control API (`/__sim/availability`) or, for the default queue, the environment.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { randomUUID } from 'node:crypto'
import { DEFAULT_FAULT_MESSAGE, ERROR_STATUS, isFault, type Fault } from './faults.js'
import { checkAuthorization, isObject, MAX_BODY_BYTES, readBody, safeJsonParse, sendJson, type JsonObject } from './start-chat-wire.js'

export const DEFAULT_QUEUE_ID = 'simulated-queue'
export const DAYS = ['SUNDAY', 'MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY'] as const
export type Day = typeof DAYS[number]

/** Minutes since local midnight; `end` <= `start` runs past midnight (equal: the whole day). */
interface Slice { start: number; end: number }

export interface SimulatedOverride {
  /** YYYY-MM-DD, in the queue's time zone. */
  date: string
  status: 'OPEN' | 'CLOSED'
  /** HH:MM; both left out: the whole day. */
  start?: string
  end?: string
  name?: string
}

/** What a test or the control API sets for one queue; anything left out keeps its value. */
export interface QueueSettings {
  /** IANA time zone of the queue's hours (default UTC). */
  timeZone?: string
  /** `always`, `closed`, `HH:MM-HH:MM` (every day), `HH:MM-HH:MM weekdays`, or slices per day. */
  hours?: string | Partial<Record<Day, string[]>>
  overrides?: SimulatedOverride[]
  /** Agents Available for this queue's chats (AGENTS_AVAILABLE). */
  agentsAvailable?: number
  /** Agents staffed (available, on a contact or in after-contact work; AGENTS_STAFFED); at least agentsAvailable. */
  agentsStaffed?: number
  contactsInQueue?: number
  status?: 'ENABLED' | 'DISABLED'
}

interface QueueState {
  timeZone: string
  weekly: Record<Day, Slice[]>
  overrides: SimulatedOverride[]
  agentsAvailable: number
  agentsStaffed: number
  contactsInQueue: number
  status: 'ENABLED' | 'DISABLED'
}

export interface AvailabilityCalls { describeQueue: number; effectiveHours: number; currentMetrics: number }

export interface AvailabilitySimulator {
  /** Creates the queue when unknown (unknown queues answer ResourceNotFoundException). */
  setQueue (queueId: string, settings: QueueSettings): void
  removeQueue (queueId: string): void
  /** Every availability call answers with this fault until cleared (null). */
  setFault (fault: Fault | null): void
  calls (): AvailabilityCalls
  reset (): void
}

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/
const DATE = /^\d{4}-\d{2}-\d{2}$/

export class SettingsError extends Error {}

function minutes (text: string, what: string): number {
  const m = HHMM.exec(text)
  if (!m) throw new SettingsError(`${what}: "${text}" is not HH:MM`)
  return Number(m[1]) * 60 + Number(m[2])
}

function slice (text: string, what: string): Slice {
  const [start, end, extra] = text.split('-')
  if (start === undefined || end === undefined || extra !== undefined) throw new SettingsError(`${what}: "${text}" is not HH:MM-HH:MM`)
  return { start: minutes(start.trim(), what), end: minutes(end.trim(), what) }
}

function emptyWeek (): Record<Day, Slice[]> {
  return Object.fromEntries(DAYS.map((d) => [d, []])) as unknown as Record<Day, Slice[]>
}

/** The weekly schedule from its short forms (environment, control API). */
export function parseHours (hours: QueueSettings['hours']): Record<Day, Slice[]> {
  const week = emptyWeek()
  if (typeof hours === 'string') {
    const text = hours.trim().toLowerCase()
    if (text === 'closed') return week
    const [range = '', scope, extra] = text.split(/\s+/)
    if (extra !== undefined || (scope !== undefined && scope !== 'weekdays')) throw new SettingsError(`hours: "${hours}" is not always, closed, HH:MM-HH:MM or HH:MM-HH:MM weekdays`)
    const s = text === 'always' ? { start: 0, end: 0 } : slice(range, 'hours')
    for (const day of DAYS) if (scope === undefined || (day !== 'SATURDAY' && day !== 'SUNDAY')) week[day] = [s]
    return week
  }
  if (!isObject(hours)) throw new SettingsError('hours: must be a string or an object of days')
  for (const [day, slices] of Object.entries(hours)) {
    if (!(DAYS as readonly string[]).includes(day)) throw new SettingsError(`hours: "${day}" is not a day (MONDAY..SUNDAY)`)
    if (!Array.isArray(slices)) throw new SettingsError(`hours.${day}: must be a list of HH:MM-HH:MM`)
    week[day as Day] = slices.map((s) => slice(String(s), `hours.${day}`))
  }
  return week
}

/** The default queue from SIM_HOURS, SIM_TIME_ZONE and SIM_AGENTS (checked when applied: SettingsError). */
export function queueSettingsFromEnv (env: Record<string, string | undefined>): QueueSettings {
  const agents = env.SIM_AGENTS
  if (agents !== undefined && agents !== '' && !/^\d{1,6}$/.test(agents.trim())) throw new SettingsError(`SIM_AGENTS: "${agents.slice(0, 20)}" is not a whole number`)
  return {
    ...(env.SIM_TIME_ZONE ? { timeZone: env.SIM_TIME_ZONE } : {}),
    ...(env.SIM_HOURS ? { hours: env.SIM_HOURS } : {}),
    ...(agents ? { agentsAvailable: Number(agents), agentsStaffed: Number(agents) } : {})
  }
}

function checkTimeZone (timeZone: unknown): string {
  if (typeof timeZone !== 'string') throw new SettingsError('timeZone: must be a string')
  try {
    new Intl.DateTimeFormat('en-US', { timeZone })
  } catch {
    throw new SettingsError(`timeZone: "${timeZone}" is not an IANA time zone`)
  }
  return timeZone
}

function checkCount (value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new SettingsError(`${what}: must be a whole number >= 0`)
  return value
}

function checkOverrides (value: unknown): SimulatedOverride[] {
  if (!Array.isArray(value)) throw new SettingsError('overrides: must be a list')
  return value.map((o: unknown, i) => {
    if (!isObject(o)) throw new SettingsError(`overrides[${i}]: must be an object`)
    if (typeof o.date !== 'string' || !DATE.test(o.date)) throw new SettingsError(`overrides[${i}].date: must be YYYY-MM-DD`)
    if (o.status !== 'OPEN' && o.status !== 'CLOSED') throw new SettingsError(`overrides[${i}].status: must be OPEN or CLOSED`)
    if ((o.start === undefined) !== (o.end === undefined)) throw new SettingsError(`overrides[${i}]: start and end go together`)
    if (o.start !== undefined) { minutes(String(o.start), `overrides[${i}].start`); minutes(String(o.end), `overrides[${i}].end`) }
    return {
      date: o.date,
      status: o.status,
      ...(o.start !== undefined ? { start: String(o.start), end: String(o.end) } : {}),
      ...(typeof o.name === 'string' ? { name: o.name.slice(0, 100) } : {})
    }
  })
}

/** Applies `settings` over `state` (a fresh default when undefined); throws SettingsError naming the field. */
function applySettings (state: QueueState | undefined, settings: QueueSettings): QueueState {
  const next: QueueState = state
    ? { ...state }
    : { timeZone: 'UTC', weekly: parseHours('always'), overrides: [], agentsAvailable: 1, agentsStaffed: 1, contactsInQueue: 0, status: 'ENABLED' }
  if (settings.timeZone !== undefined) next.timeZone = checkTimeZone(settings.timeZone)
  if (settings.hours !== undefined) next.weekly = parseHours(settings.hours)
  if (settings.overrides !== undefined) next.overrides = checkOverrides(settings.overrides)
  if (settings.agentsAvailable !== undefined) {
    next.agentsAvailable = checkCount(settings.agentsAvailable, 'agentsAvailable')
    if (settings.agentsStaffed === undefined) next.agentsStaffed = Math.max(next.agentsStaffed, next.agentsAvailable)
  }
  if (settings.agentsStaffed !== undefined) next.agentsStaffed = Math.max(checkCount(settings.agentsStaffed, 'agentsStaffed'), next.agentsAvailable)
  if (settings.contactsInQueue !== undefined) next.contactsInQueue = checkCount(settings.contactsInQueue, 'contactsInQueue')
  if (settings.status !== undefined) {
    if (settings.status !== 'ENABLED' && settings.status !== 'DISABLED') throw new SettingsError('status: must be ENABLED or DISABLED')
    next.status = settings.status
  }
  return next
}

const time = (m: number) => ({ Hours: Math.floor(m / 60) % 24, Minutes: m % 60 })

/** Minute ranges of one day without `cut` (both within 0..1440). */
function subtract (ranges: Array<[number, number]>, cut: [number, number]): Array<[number, number]> {
  const out: Array<[number, number]> = []
  for (const [a, b] of ranges) {
    if (cut[1] <= a || cut[0] >= b) { out.push([a, b]); continue }
    if (a < cut[0]) out.push([a, cut[0]])
    if (cut[1] < b) out.push([cut[1], b])
  }
  return out
}

/** One date's effective hours: the weekday's slices, with that date's overrides applied in order. */
function effectiveDay (state: QueueState, date: string): Array<{ Start: object; End: object }> {
  const weekday = DAYS[new Date(`${date}T00:00:00Z`).getUTCDay()]!
  const base = state.weekly[weekday].map((s) => ({ ...s }))
  const overrides = state.overrides.filter((o) => o.date === date)
  if (overrides.length === 0) return base.map((s) => ({ Start: time(s.start), End: time(s.end) }))
  // Overrides work in minutes of this date; a base slice running past midnight is cut at 24:00 here.
  let ranges: Array<[number, number]> = base.map((s) => [s.start, s.end <= s.start ? 1440 : s.end])
  for (const o of overrides) {
    const range: [number, number] = o.start === undefined ? [0, 1440] : [minutes(o.start, 'start'), minutes(o.end!, 'end') || 1440]
    ranges = o.status === 'CLOSED' ? subtract(ranges, range) : [...subtract(ranges, range), range]
  }
  ranges.sort((x, y) => x[0] - y[0])
  return ranges.filter(([a, b]) => b > a).map(([a, b]) => ({ Start: time(a), End: time(b === 1440 ? 0 : b) }))
}

function* datesBetween (from: string, to: string): Generator<string> {
  for (let t = Date.parse(`${from}T00:00:00Z`), end = Date.parse(`${to}T00:00:00Z`); t <= end; t += 86_400_000) {
    yield new Date(t).toISOString().slice(0, 10)
  }
}

const SETTINGS = new Set(['timeZone', 'hours', 'overrides', 'agentsAvailable', 'agentsStaffed', 'contactsInQueue', 'status'])
const METRICS = new Set(['AGENTS_AVAILABLE', 'AGENTS_STAFFED', 'AGENTS_ONLINE', 'CONTACTS_IN_QUEUE'])

const notFound = (what: string) => ({ status: 404, type: 'ResourceNotFoundException', message: `${what} not found` })
const invalid = (message: string) => ({ status: 400, type: 'InvalidParameterException', message })

type Answer = { status: number; body: object } | { status: number; type: string; message: string }

/** The availability side of one simulator: queues, hours, agents, and its share of the control API. */
export class AvailabilityService implements AvailabilitySimulator {
  private queues = new Map<string, QueueState>()
  private fault: Fault | null = null
  private counters: AvailabilityCalls = { describeQueue: 0, effectiveHours: 0, currentMetrics: 0 }

  constructor (
    private readonly defaults: QueueSettings = {},
    private readonly sleep: (ms: number) => Promise<void>,
    private readonly now: () => number
  ) {
    this.reset()
  }

  setQueue (queueId: string, settings: QueueSettings): void {
    this.queues.set(queueId, applySettings(this.queues.get(queueId), settings))
  }

  removeQueue (queueId: string): void {
    this.queues.delete(queueId)
  }

  setFault (fault: Fault | null): void {
    this.fault = fault
  }

  calls (): AvailabilityCalls {
    return { ...this.counters }
  }

  reset (): void {
    this.queues = new Map([[DEFAULT_QUEUE_ID, applySettings(undefined, this.defaults)]])
    this.fault = null
    this.counters = { describeQueue: 0, effectiveHours: 0, currentMetrics: 0 }
  }

  /** Answers the request when it is one of the three operations; false otherwise. */
  handles (req: IncomingMessage, res: ServerResponse, path: string): boolean {
    const parts = path.split('/').map((p) => { try { return decodeURIComponent(p) } catch { return p } })
    let operation: ((body: JsonObject) => Answer) | undefined
    if (req.method === 'GET' && parts.length === 4 && parts[1] === 'queues') {
      this.counters.describeQueue++
      operation = () => this.describeQueue(parts[2]!, parts[3]!)
    } else if (req.method === 'GET' && parts.length === 4 && parts[1] === 'effective-hours-of-operations') {
      this.counters.effectiveHours++
      const query = new URL(req.url ?? '/', 'http://sim').searchParams
      operation = () => this.effectiveHours(parts[3]!, query.get('fromDate'), query.get('toDate'))
    } else if (req.method === 'POST' && parts.length === 4 && parts[1] === 'metrics' && parts[2] === 'current') {
      this.counters.currentMetrics++
      operation = (body) => this.currentMetrics(body)
    }
    if (!operation) return false
    const run = operation
    this.answer(req, res, run).catch(() => {
      if (!res.headersSent) sendJson(res, randomUUID(), 500, { Message: 'Simulator error' }, { 'x-amzn-errortype': 'InternalServiceException' })
    })
    return true
  }

  private async answer (req: IncomingMessage, res: ServerResponse, operation: (body: JsonObject) => Answer): Promise<void> {
    const requestId = randomUUID()
    const refuse = (status: number, type: string, message: string) => sendJson(res, requestId, status, { Message: message }, { 'x-amzn-errortype': type })
    const authError = checkAuthorization(req.headers.authorization)
    if (authError) return refuse(authError.status, authError.type, authError.message)
    const text = await readBody(req, MAX_BODY_BYTES)
    const body = text.ok && text.text.trim() !== '' ? safeJsonParse(text.text) : {}
    const fault = this.fault
    if (fault) {
      if (fault.type === 'slow') await this.sleep(fault.delayMs)
      else if (fault.type === 'hang') return
      else if (fault.type === 'reset') { req.socket.destroy(); return } else if (fault.type === 'malformed') {
        res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-requestid': requestId })
        res.end('<html><body>Service Unavailable</body>')
        return
      } else return refuse(ERROR_STATUS[fault.type], fault.type, fault.message ?? DEFAULT_FAULT_MESSAGE[fault.type])
    }
    if (!isObject(body)) return refuse(400, 'SerializationException', 'Malformed JSON body')
    const result = operation(body)
    if ('type' in result) return refuse(result.status, result.type, result.message)
    sendJson(res, requestId, result.status, result.body)
  }

  private describeQueue (instanceId: string, queueId: string): Answer {
    const queue = this.queues.get(queueId)
    if (!queue) return notFound(`Queue ${queueId.slice(0, 100)}`)
    return {
      status: 200,
      body: {
        Queue: {
          QueueId: queueId,
          QueueArn: `arn:aws:connect:us-east-1:123456789012:instance/${instanceId}/queue/${queueId}`,
          Name: queueId,
          HoursOfOperationId: `hours-${queueId}`,
          Status: queue.status,
          LastModifiedTime: 1_700_000_000
        }
      }
    }
  }

  private effectiveHours (hoursId: string, fromDate: string | null, toDate: string | null): Answer {
    const queue = hoursId.startsWith('hours-') ? this.queues.get(hoursId.slice('hours-'.length)) : undefined
    if (!queue) return notFound(`Hours of operation ${hoursId.slice(0, 100)}`)
    if (fromDate === null || toDate === null || !DATE.test(fromDate) || !DATE.test(toDate)) return invalid('fromDate and toDate must be YYYY-MM-DD')
    const days = (Date.parse(toDate) - Date.parse(fromDate)) / 86_400_000
    if (!(days >= 0 && days <= 31)) return invalid('toDate must be on or after fromDate, at most 31 days later')
    const dates = [...datesBetween(fromDate, toDate)]
    return {
      status: 200,
      body: {
        TimeZone: queue.timeZone,
        EffectiveHoursOfOperationList: dates.map((date) => ({ Date: date, OperationalHours: effectiveDay(queue, date) })),
        EffectiveOverrideHoursList: dates.flatMap((date) => {
          const overrides = queue.overrides.filter((o) => o.date === date)
          return overrides.length === 0 ? [] : [{
            Date: date,
            OverrideHours: overrides.map((o) => ({
              OverrideName: o.name ?? 'override',
              OperationalStatus: o.status,
              Start: time(o.start === undefined ? 0 : minutes(o.start, 'start')),
              End: time(o.end === undefined ? 0 : minutes(o.end, 'end'))
            }))
          }]
        })
      }
    }
  }

  private currentMetrics (body: JsonObject): Answer {
    const filters = isObject(body.Filters) ? body.Filters : undefined
    const queues = filters?.Queues
    if (!Array.isArray(queues) || queues.length < 1 || queues.length > 100 || !queues.every((q) => typeof q === 'string')) {
      return invalid('Filters.Queues must list 1 to 100 queue ids')
    }
    const channels = filters?.Channels
    if (channels !== undefined && (!Array.isArray(channels) || channels.some((c) => !['VOICE', 'CHAT', 'TASK', 'EMAIL'].includes(c as string)))) {
      return invalid('Filters.Channels must hold VOICE, CHAT, TASK or EMAIL')
    }
    const metrics = body.CurrentMetrics
    if (!Array.isArray(metrics) || metrics.length === 0 || !metrics.every((m) => isObject(m) && METRICS.has(m.Name as string) && m.Unit === 'COUNT')) {
      return invalid(`CurrentMetrics must name ${[...METRICS].join(', ')} with Unit COUNT`)
    }
    const chatOnly = Array.isArray(channels) && channels.length > 0 && !channels.includes('CHAT')
    const results = []
    for (const queueId of queues as string[]) {
      const queue = this.queues.get(queueId)
      if (!queue || chatOnly) continue
      const values: Record<string, number> = {
        AGENTS_AVAILABLE: queue.agentsAvailable,
        AGENTS_STAFFED: queue.agentsStaffed,
        AGENTS_ONLINE: queue.agentsStaffed,
        CONTACTS_IN_QUEUE: queue.contactsInQueue
      }
      // As Connect does, a queue with nothing to report is left out of the results.
      if (Object.values(values).every((v) => v === 0)) continue
      results.push({
        Dimensions: { Queue: { Id: queueId, Arn: `arn:aws:connect:us-east-1:123456789012:instance/x/queue/${queueId}` }, Channel: 'CHAT' },
        Collections: (metrics as JsonObject[]).map((m) => ({ Metric: { Name: m.Name, Unit: 'COUNT' }, Value: values[m.Name as string] }))
      })
    }
    return { status: 200, body: { MetricResults: results, DataSnapshotTime: Math.floor(this.now() / 1000), ApproximateTotalCount: results.length } }
  }

  /** `/__sim/availability` (GET: calls and queues; POST: settings), `/__sim/availability/fault`. */
  async handleControl (req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
    if (path !== '/__sim/availability' && path !== '/__sim/availability/fault') return false
    const requestId = randomUUID()
    if (req.method === 'GET' && path === '/__sim/availability') {
      sendJson(res, requestId, 200, { calls: this.calls(), queues: Object.fromEntries(this.queues) })
      return true
    }
    if (req.method !== 'POST') return false
    const text = await readBody(req, MAX_BODY_BYTES)
    const body = text.ok ? safeJsonParse(text.text) : undefined
    if (path === '/__sim/availability/fault') {
      if (body === null || isFault(body)) {
        this.setFault(body)
        sendJson(res, requestId, 200, { fault: body })
      } else sendJson(res, requestId, 400, { Message: 'Body must be a Fault or null' })
      return true
    }
    if (!isObject(body)) {
      sendJson(res, requestId, 400, { Message: 'Body must be an object of queue settings' })
      return true
    }
    const { queueId = DEFAULT_QUEUE_ID, ...settings } = body
    const unknown = Object.keys(settings).filter((k) => !SETTINGS.has(k))
    if (unknown.length > 0) {
      sendJson(res, requestId, 400, { Message: `Unknown setting(s): ${unknown.join(', ').slice(0, 200)}` })
      return true
    }
    if (typeof queueId !== 'string' || queueId.length === 0 || queueId.length > 100) {
      sendJson(res, requestId, 400, { Message: 'queueId must be a string of 1..100 characters' })
      return true
    }
    try {
      this.setQueue(queueId, settings as QueueSettings)
      sendJson(res, requestId, 200, { queueId, queue: this.queues.get(queueId) })
    } catch (err) {
      if (!(err instanceof SettingsError)) throw err
      sendJson(res, requestId, 400, { Message: err.message })
    }
    return true
  }
}
