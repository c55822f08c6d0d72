/**
 * The pacing schedule (GCRA: one "theoretical arrival time", TAT), in Redis for the deployment and
 * in memory for a process on its own, plus the rule that lowers the rate when Connect throttles.
 *
 * Every reservation is known by its mark: the TAT right after it. Marks let a replica re-plan its
 * waiting starts when the rate changes (the TAT and every mark are stretched around the same
 * instant) and give back the slot of a start that left: a released mark becomes a hole, and holes
 * at the end of the schedule are folded back into the TAT, whichever replica released them first.
 * A hole in the middle stays: moving every later start up would take all replicas' waiters.
 */

/** A reservation: whether it fits, how long to wait, and its place on the schedule. */
export interface Slot { granted: boolean; waitMs: number; mark: number; intervalMs: number }

/** A throttle lowers the rate by at least this much... */
export const MIN_CUT = 0.9
/** ...and at most to this much, however few calls Connect accepted (few sent is not few allowed). */
export const MAX_CUT = 0.5

/**
 * What Connect really gives: the calls it accepted per second over the last window, with each
 * step a cut of 10% to 50% (a measurement right after a quiet spell says little).
 */
export function lowerRate (current: number, acceptedPerSecond: number, floor: number): number {
  return Math.max(floor, Math.min(current * MIN_CUT, Math.max(current * MAX_CUT, acceptedPerSecond)))
}

/** Stretches a time on the schedule around `pivot` by `k` (the old rate over the new). */
export const stretch = (at: number, pivot: number, k: number): number => at > pivot ? pivot + (at - pivot) * k : at
const round3 = (x: number): number => Number(x.toFixed(3))

// KEYS: bucket, rate record, replicas. A call is allowed at TAT + interval - burst * interval.
export const RESERVE_LUA = `
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
export const ACCEPTED_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`

/**
 * KEYS: bucket, rate record, accepted log, holes. ARGV: current rate, floor, window ms, debounce ms,
 * since (the learner's clock, for recovery), record TTL ms, channel, MIN_CUT, MAX_CUT.
 * Throttles closer together than the debounce count once: they come from calls sent before the
 * first one was learned. The record is "rate:since:at:k", at on Redis's clock (the pivot).
 */
export const LEARN_LUA = `
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
local record = string.format('%.6f:%s:%.3f:%.17g', rate, ARGV[5], now, k)
redis.call('SET', KEYS[2], record, 'PX', ARGV[6])
redis.call('PUBLISH', ARGV[7], record)
return { 1, record, string.format('%.3f', measured) }
`

// KEYS: bucket, holes. ARGV: mark, interval, mark, interval, ... Returns the slots folded back.
export const RELEASE_LUA = `
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

export type ReserveReply = [number, string, string, number, string | null, string, string]
export type LearnReply = [number, string, string]

/** The same schedule in memory, for a process without Redis or while Redis is unreachable. */
export class LocalSchedule {
  tat = 0
  private readonly holes = new Map<number, number>()

  reserve (now: number, intervalMs: number, burst: number, maxWaitMs: number): Slot {
    const tat = Math.max(this.tat, now)
    const waitMs = tat + intervalMs - burst * intervalMs - now
    if (waitMs > maxWaitMs) return { granted: false, waitMs, mark: NaN, intervalMs }
    this.tat = round3(tat + intervalMs)
    return { granted: true, waitMs: Math.max(0, waitMs), mark: this.tat, intervalMs }
  }

  stretch (pivot: number, k: number): void {
    this.tat = round3(stretch(this.tat, pivot, k))
    this.holes.clear()
  }

  /** Gives slots back; those at the end of the schedule come free at once. */
  release (now: number, slots: Array<{ mark: number; intervalMs: number }>): number {
    for (const s of slots) if (s.mark > now) this.holes.set(s.mark, s.intervalMs)
    let freed = 0
    for (let interval = this.holes.get(this.tat); interval !== undefined; interval = this.holes.get(this.tat)) {
      this.holes.delete(this.tat)
      this.tat = round3(this.tat - interval)
      freed++
    }
    for (const mark of this.holes.keys()) if (mark > this.tat || mark <= now) this.holes.delete(mark)
    return freed
  }
}
