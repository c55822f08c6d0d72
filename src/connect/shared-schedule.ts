/**
 * The deployment's pacing schedule, in Redis: one GCRA schedule on Redis's own clock for every
 * replica, the calls Connect accepted (what the rate is learned from), the learned rate record
 * and the holes left by starts that gave their slot back. Each step is one Lua script, so replicas
 * never see half of another's change. The in-memory schedule is pacing-schedule.ts.
 */
import type { Redis } from 'ioredis'
import { MAX_CUT, MIN_CUT, type Slot } from './pacing-schedule.js'

// KEYS: bucket, rate record, replicas. A call is allowed at TAT + interval - burst * interval.
const RESERVE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval, burst, maxWait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
local wait = tat + interval - burst * interval - now
local granted, mark = 0, ''
if wait <= maxWait then
  granted = 1
  tat = tat + interval
  mark = string.format('%.3f', tat)
  redis.call('SET', KEYS[1], mark, 'PX', math.ceil(tat - now) + 1000)
end
return { granted, string.format('%.3f', wait), string.format('%.3f', tat - now), redis.call('ZCARD', KEYS[3]), redis.call('GET', KEYS[2]), mark, string.format('%.3f', now) }
`

// KEYS: accepted log. ARGV: member, window ms.
const ACCEPTED_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`

/**
 * KEYS: bucket, rate record, accepted log, holes. ARGV: current rate, floor, window ms, debounce ms,
 * since (the learner's clock, for recovery), record TTL ms, channel, MIN_CUT, MAX_CUT, learner id.
 * Throttles closer together than the debounce count once: they come from calls sent before the
 * first one was learned. The record is "rate:since:at:k:learner", at on Redis's clock (the pivot).
 */
const LEARN_LUA = `
local t = redis.call('TIME')
local now = tonumber(string.format('%.3f', tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000))
local current, floor, window, debounce = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local last = redis.call('GET', KEYS[2])
if last then
  local at = tonumber(string.match(last, '^[^:]*:[^:]*:([^:]*)'))
  if at and now - at < debounce then return { 0, last, '' } end
end
local measured = redis.call('ZCOUNT', KEYS[3], now - window, '+inf') * 1000 / window
local rate = math.max(floor, math.min(current * tonumber(ARGV[8]), math.max(current * tonumber(ARGV[9]), measured)))
if rate >= current then return { 0, last or '', '' } end
local k = current / rate
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat and tat > now then
  tat = tonumber(string.format('%.3f', now + (tat - now) * k))
  redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1000)
end
redis.call('DEL', KEYS[4])
local record = string.format('%.6f:%s:%.3f:%.17g:%s', rate, ARGV[5], now, k, ARGV[10])
redis.call('SET', KEYS[2], record, 'PX', ARGV[6])
redis.call('PUBLISH', ARGV[7], record)
return { 1, record, string.format('%.3f', measured) }
`

// KEYS: bucket, holes. ARGV: mark, interval, mark, interval, ... Returns the slots folded back.
const RELEASE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat <= now then redis.call('DEL', KEYS[2]) return 0 end
for i = 1, #ARGV, 2 do redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i] .. ':' .. ARGV[i + 1]) end
local freed = 0
for _ = 1, 100000 do
  local top = redis.call('ZREVRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if #top == 0 or tonumber(top[2]) < tat - 0.5 then break end
  redis.call('ZREM', KEYS[2], top[1])
  if tonumber(top[2]) <= tat + 0.5 then
    tat = tonumber(top[2]) - tonumber(string.match(top[1], ':([^:]*)$'))
    freed = freed + 1
  end
end
if freed > 0 then
  tat = math.max(tat, now)
  redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1000)
end
redis.call('PEXPIRE', KEYS[2], math.ceil(tat - now) + 1000)
return freed
`

type ReserveReply = [number, string, string, number, string | null, string, string]
type LearnReply = [number, string, string]

interface PacingRedis {
  ccgPaceReserve (bucket: string, rate: string, replicas: string, intervalMs: number, burst: number, maxWaitMs: number): Promise<ReserveReply>
  ccgPaceAccepted (accepted: string, member: string, windowMs: number): Promise<number>
  ccgPaceLearn (bucket: string, rate: string, accepted: string, holes: string, current: number, floor: number, windowMs: number,
    debounceMs: number, since: number, ttlMs: number, channel: string, minCut: number, maxCut: number, learner: string): Promise<LearnReply>
  ccgPaceRelease (bucket: string, holes: string, ...markIntervalPairs: string[]): Promise<number>
}

const SCRIPTS = [
  ['ccgPaceReserve', 3, RESERVE_LUA], ['ccgPaceAccepted', 1, ACCEPTED_LUA], ['ccgPaceLearn', 4, LEARN_LUA], ['ccgPaceRelease', 2, RELEASE_LUA]
] as const

export interface SharedReservation {
  slot: Slot
  /** How far ahead of the schedule's now it has handed out its slots. */
  horizonMs: number
  /** Replicas in the roster, as Redis counts them (0: no roster). */
  replicas: number
  /** The learned rate record ("rate:since:at:k:learner"), if any. */
  record: string | null
  /** When the slot was reserved, on the schedule's clock. */
  reservedAt: number
}

/** The schedule all replicas reserve on: in Redis (this file) or in the state table (table-schedule.ts). */
export interface DeploymentSchedule {
  /** Reserves the next slot if it comes within `maxWaitMs`. */
  reserve (intervalMs: number, burst: number, maxWaitMs: number): Promise<SharedReservation>
  /** Gives slots back; returns how many came free at the end of the schedule. */
  release (slots: Array<{ mark: number; intervalMs: number }>): Promise<number>
}

export interface LearnArgs {
  current: number
  floor: number
  windowMs: number
  debounceMs: number
  /** The learner's clock, from which recovery is counted. */
  since: number
  ttlMs: number
}

export class SharedSchedule implements DeploymentSchedule {
  readonly keys: { bucket: string; rate: string; replicas: string; accepted: string; holes: string; channel: string }

  constructor (private readonly redis: Redis, keyPrefix = '') {
    const prefix = `${keyPrefix}pacing:`
    this.keys = {
      bucket: `${prefix}bucket`, rate: `${prefix}rate`, replicas: `${prefix}replicas`,
      accepted: `${prefix}accepted`, holes: `${prefix}holes`, channel: `${prefix}rate`
    }
    for (const [name, numberOfKeys, lua] of SCRIPTS) {
      if (typeof (redis as unknown as Record<string, unknown>)[name] !== 'function') redis.defineCommand(name, { numberOfKeys, lua })
    }
  }

  private get commands (): Redis & PacingRedis {
    return this.redis as Redis & PacingRedis
  }

  /** Reserves the next slot if it comes within `maxWaitMs`. */
  async reserve (intervalMs: number, burst: number, maxWaitMs: number): Promise<SharedReservation> {
    const k = this.keys
    const [granted, wait, horizon, replicas, record, mark, reservedAt] = await this.commands.ccgPaceReserve(
      k.bucket, k.rate, k.replicas, intervalMs, burst, Math.min(maxWaitMs, 1e12))
    return {
      slot: { granted: granted === 1, waitMs: Math.max(0, Number(wait)), mark: Number(mark), intervalMs },
      horizonMs: Number(horizon),
      replicas,
      record,
      reservedAt: Number(reservedAt)
    }
  }

  /** Logs one call Connect accepted (`member` unique), kept for one window. */
  async accepted (member: string, windowMs: number): Promise<void> {
    await this.commands.ccgPaceAccepted(this.keys.accepted, member, windowMs)
  }

  /**
   * Connect throttled: lowers the deployment's rate to what it accepted over the window, stretches
   * the schedule and publishes the new record, signed with `learner` (the replica's id, so it can
   * tell its own record from another's when it hears it). `changed` is false inside the debounce or
   * when the rate would not drop; the record is then the one in force.
   */
  async learn (a: LearnArgs, learner: string): Promise<{ changed: boolean; record: string; measured: number }> {
    const k = this.keys
    const [changed, record, measured] = await this.commands.ccgPaceLearn(
      k.bucket, k.rate, k.accepted, k.holes, a.current, a.floor, a.windowMs, a.debounceMs, a.since, a.ttlMs, k.channel, MIN_CUT, MAX_CUT, learner)
    return { changed: changed === 1, record, measured: Number(measured) }
  }

  /** Gives slots back; returns how many came free at the end of the schedule. */
  release (slots: Array<{ mark: number; intervalMs: number }>): Promise<number> {
    const pairs = slots.flatMap((s) => [s.mark.toFixed(3), String(s.intervalMs)])
    return this.commands.ccgPaceRelease(this.keys.bucket, this.keys.holes, ...pairs)
  }
}
