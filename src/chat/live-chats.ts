import { createHash, randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'

/**
 * The chats this deployment holds open on Connect, counted per caller, for anonymous callers as a
 * whole, and in all. A start takes a seat before it waits for pacing or calls Connect (so a burst
 * cannot overshoot), confirms it with the contact id and the chat's end when Connect accepts, and
 * gives it back when the start fails. A seat is freed when the gateway ends the chat, when Connect
 * says the chat ended (see ChatQuota), and at the latest when the chat's duration has passed.
 *
 * Kept for all replicas in Redis (sorted sets scored by expiry, changed by Lua scripts so two
 * replicas cannot both take the last seat) or in DynamoDB (live-chats-dynamodb.ts: one item written
 * only if nobody wrote it since it was read); in this process alone otherwise.
 */
export interface LiveChats {
  /** Takes a seat for `caller` until `untilMs` (a pending start's bound), or names the limit that refused it. */
  take (caller: Caller, limits: SeatLimits, untilMs: number): Promise<TakeResult>
  /** The pending seat became `chat`: it counts until `untilMs`. */
  confirm (seat: string, caller: Caller, chat: LiveChat, untilMs: number): Promise<void>
  /** The start failed: the pending seat is free again. */
  release (seat: string, caller: Caller): Promise<void>
  /** The chat ended (ended by the gateway, or Connect says so): its seat is free. */
  end (chat: LiveChat): Promise<void>
  /** Live chats now, anonymous and verified. */
  counts (): Promise<{ anonymous: number; verified: number }>
  /** May `chat` be asked about now? At most once per `everyMs` per chat, and `perSecond` asks in all. */
  mayDescribe (chat: LiveChat, everyMs: number, perSecond: number): Promise<boolean>
}

/** Who holds a chat: a verified customer's subject or a client address, already in key form. */
export interface Caller { key: string; anonymous: boolean }

export interface SeatLimits { perCaller: number; total: number; anonymous: number }

/** A chat the ledger knows: where it lives and its id. */
export interface LiveChat { instanceId: string; contactId: string }

export type Limit = 'caller' | 'anonymous' | 'total'
export type TakeResult = { ok: true; seat: string } | { ok: false; limit: Limit; held: LiveChat[] }

/** How many of the oldest chats a refusal hands back to be checked with Connect. */
export const CHECK_OLDEST = 5

const PENDING = 'pending:'
export const member = (chat: LiveChat) => `${chat.instanceId} ${chat.contactId}`
function chatOf (m: string): LiveChat | undefined {
  if (m.startsWith(PENDING)) return undefined
  const space = m.indexOf(' ')
  return { instanceId: m.slice(0, space), contactId: m.slice(space + 1) }
}
const chatsOf = (members: string[]) => members.map(chatOf).filter((c): c is LiveChat => c !== undefined)
// A caller key may hold a customer's subject: hashed wherever it is stored (Redis keys, the DynamoDB
// ledger), so nothing stored names a person and any text fits.
export const callerId = (caller: Caller) => createHash('sha256').update(caller.key).digest('base64url').slice(0, 22)

// --- The seats themselves ------------------------------------------------------------------------

/** One seat: whose it is (the caller key, or its hash where it is stored), and until when it counts. */
export interface SeatEntry { caller: string; anonymous: boolean; until: number }

/**
 * The seat logic of a ledger held whole in one place: this process's memory, or one item read and
 * written back by a shared store. Plain data in, plain data out; the store decides when to sweep.
 */
export class SeatBook {
  /** member -> its seat. Bounded by the total limit, which every take() enforces. */
  private readonly seats = new Map<string, SeatEntry>()
  /** Each caller's members, and the anonymous count, kept with every change so a take is O(1). */
  private readonly byCaller = new Map<string, Set<string>>()
  private anonymous = 0

  constructor (entries: Iterable<[string, SeatEntry]> = []) {
    for (const [m, seat] of entries) this.add(m, seat)
  }

  entries (): IterableIterator<[string, SeatEntry]> { return this.seats.entries() }

  get size (): number { return this.seats.size }

  add (m: string, seat: SeatEntry): void {
    this.remove(m)
    this.seats.set(m, seat)
    let mine = this.byCaller.get(seat.caller)
    if (!mine) this.byCaller.set(seat.caller, mine = new Set())
    mine.add(m)
    if (seat.anonymous) this.anonymous++
  }

  /** True when `m` held a seat. */
  remove (m: string): boolean {
    const seat = this.seats.get(m)
    if (!seat) return false
    this.seats.delete(m)
    const mine = this.byCaller.get(seat.caller)
    mine?.delete(m)
    if (mine?.size === 0) this.byCaller.delete(seat.caller)
    if (seat.anonymous) this.anonymous--
    return true
  }

  /** Seats whose time has passed go: a full sweep, O(live chats). */
  sweep (now: number): void {
    for (const [m, seat] of this.seats) if (seat.until <= now) this.remove(m)
  }

  /**
   * A pending seat for `caller` (its key as this book keys callers) until `untilMs`, or the limit
   * that refuses it. A refusal is final only after `sweepAll`: a seat expired since the last sweep
   * must not count.
   */
  take (caller: Caller, limits: SeatLimits, untilMs: number, sweepAll: () => void): TakeResult {
    let limit = this.limitReached(caller, limits)
    if (limit !== undefined) {
      sweepAll()
      limit = this.limitReached(caller, limits)
    }
    if (limit === 'caller') return { ok: false, limit, held: this.oldest(this.byCaller.get(caller.key)!) }
    if (limit === 'anonymous') return { ok: false, limit, held: this.oldest([...this.seats].filter(([, s]) => s.anonymous).map(([m]) => m)) }
    if (limit === 'total') return { ok: false, limit, held: this.oldest(this.seats.keys()) }
    const seat = PENDING + randomUUID()
    this.add(seat, { caller: caller.key, anonymous: caller.anonymous, until: untilMs })
    return { ok: true, seat }
  }

  /** The pending seat became `chat`, counted until `untilMs`. */
  confirm (seat: string, caller: Caller, chat: LiveChat, untilMs: number): void {
    this.remove(seat)
    this.add(member(chat), { caller: caller.key, anonymous: caller.anonymous, until: untilMs })
  }

  /** True when `chat` held a seat. */
  end (chat: LiveChat): boolean { return this.remove(member(chat)) }

  counts (): { anonymous: number; verified: number } {
    return { anonymous: this.anonymous, verified: this.seats.size - this.anonymous }
  }

  private oldest (members: Iterable<string>): LiveChat[] {
    return chatsOf([...members].sort((a, b) => this.seats.get(a)!.until - this.seats.get(b)!.until)).slice(0, CHECK_OLDEST)
  }

  private limitReached (caller: Caller, limits: SeatLimits): Limit | undefined {
    if ((this.byCaller.get(caller.key)?.size ?? 0) >= limits.perCaller) return 'caller'
    if (caller.anonymous && this.anonymous >= limits.anonymous) return 'anonymous'
    if (this.seats.size >= limits.total) return 'total'
    return undefined
  }
}

// --- In this process ---------------------------------------------------------------------------

class LocalLiveChats implements LiveChats {
  /** In this process the caller's key itself will do: it never leaves memory. */
  private readonly book = new SeatBook()
  private purgedAt = -Infinity
  private readonly described = new Map<string, number>()
  private describeWindow = { second: 0, asked: 0 }

  constructor (private readonly now: () => number) {}

  /** Seats whose time has passed go, at most once a second unless forced: a full sweep is O(live chats). */
  private purge (force = false): void {
    const now = this.now()
    if (!force && now - this.purgedAt < 1_000) return
    this.purgedAt = now
    this.book.sweep(now)
    for (const [m, until] of this.described) if (until <= now) this.described.delete(m)
  }

  async take (caller: Caller, limits: SeatLimits, untilMs: number): Promise<TakeResult> {
    this.purge()
    return this.book.take(caller, limits, untilMs, () => this.purge(true))
  }

  async confirm (seat: string, caller: Caller, chat: LiveChat, untilMs: number): Promise<void> {
    this.book.confirm(seat, caller, chat, untilMs)
  }

  async release (seat: string): Promise<void> { this.book.remove(seat) }

  async end (chat: LiveChat): Promise<void> { this.book.end(chat) }

  async counts () {
    this.purge(true)
    return this.book.counts()
  }

  async mayDescribe (chat: LiveChat, everyMs: number, perSecond: number): Promise<boolean> {
    const now = this.now()
    const m = member(chat)
    if ((this.described.get(m) ?? 0) > now) return false
    const second = Math.floor(now / 1000)
    if (this.describeWindow.second !== second) this.describeWindow = { second, asked: 0 }
    if (this.describeWindow.asked >= perSecond) return false
    this.describeWindow.asked++
    this.described.set(m, now + everyMs)
    return true
  }
}

// --- Shared through Redis ----------------------------------------------------------------------

// KEYS: all, anonymous, caller. ARGV: now, until, seat, perCaller, total, anonymousLimit, anonymous (1/0), checkOldest.
// Expired seats go first, so a chat whose duration passed never refuses anyone.
const TAKE_LUA = `
local now, untilMs = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 1, 3 do redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now) end
local n = tonumber(ARGV[8]) - 1
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[4]) then return {'caller', unpack(redis.call('ZRANGE', KEYS[3], 0, n))} end
if ARGV[7] == '1' and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[6]) then return {'anonymous', unpack(redis.call('ZRANGE', KEYS[2], 0, n))} end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[5]) then return {'total', unpack(redis.call('ZRANGE', KEYS[1], 0, n))} end
redis.call('ZADD', KEYS[1], untilMs, ARGV[3])
if ARGV[7] == '1' then redis.call('ZADD', KEYS[2], untilMs, ARGV[3]) end
redis.call('ZADD', KEYS[3], untilMs, ARGV[3])
local ttl = untilMs - now
for i = 1, 3 do if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end end
return {'ok'}`

// KEYS: all, anonymous, caller, owner. ARGV: now, until, seat, member, owner value.
// The owner record lets end() find the caller's set from the chat alone.
const CONFIRM_LUA = `
local untilMs, ttl = tonumber(ARGV[2]), tonumber(ARGV[2]) - tonumber(ARGV[1])
local anonymous = string.sub(ARGV[5], 1, 1) == '1'
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('ZREM', KEYS[1], ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[3])
redis.call('ZADD', KEYS[1], untilMs, ARGV[4])
if anonymous then redis.call('ZADD', KEYS[2], untilMs, ARGV[4]) end
redis.call('ZADD', KEYS[3], untilMs, ARGV[4])
for i = 1, 3 do if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end end
redis.call('SET', KEYS[4], ARGV[5], 'PX', ttl)
return 1`

// KEYS: all, anonymous, owner. ARGV: member, caller-set prefix.
const END_LUA = `
local owner = redis.call('GET', KEYS[3])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if owner then redis.call('ZREM', ARGV[2] .. string.sub(owner, 3), ARGV[1]) end
redis.call('DEL', KEYS[3])
return owner and 1 or 0`

interface LiveChatScripts {
  ccgLiveTake (all: string, anonymous: string, caller: string, ...argv: string[]): Promise<string[]>
  ccgLiveConfirm (all: string, anonymous: string, caller: string, owner: string, ...argv: string[]): Promise<number>
  ccgLiveEnd (all: string, anonymous: string, owner: string, ...argv: string[]): Promise<number>
}

class RedisLiveChats implements LiveChats {
  private readonly redis: Redis & LiveChatScripts
  private readonly keys: { all: string; anonymous: string; caller: string; owner: string; described: string; asked: string }

  constructor (redis: Redis, prefix: string, private readonly now: () => number) {
    const r = redis as Redis & Partial<LiveChatScripts>
    if (typeof r.ccgLiveTake !== 'function') {
      redis.defineCommand('ccgLiveTake', { numberOfKeys: 3, lua: TAKE_LUA })
      redis.defineCommand('ccgLiveConfirm', { numberOfKeys: 4, lua: CONFIRM_LUA })
      redis.defineCommand('ccgLiveEnd', { numberOfKeys: 3, lua: END_LUA })
    }
    this.redis = redis as Redis & LiveChatScripts
    const base = `${prefix}live:`
    this.keys = { all: `${base}all`, anonymous: `${base}anonymous`, caller: `${base}caller:`, owner: `${base}owner:`, described: `${base}described:`, asked: `${base}asked:` }
  }

  async take (caller: Caller, limits: SeatLimits, untilMs: number): Promise<TakeResult> {
    const seat = PENDING + randomUUID()
    const { all, anonymous } = this.keys
    const [verdict = 'ok', ...held] = await this.redis.ccgLiveTake(all, anonymous, this.keys.caller + callerId(caller),
      String(this.now()), String(untilMs), seat, String(limits.perCaller), String(limits.total), String(limits.anonymous),
      caller.anonymous ? '1' : '0', String(CHECK_OLDEST))
    return verdict === 'ok' ? { ok: true, seat } : { ok: false, limit: verdict as Limit, held: chatsOf(held) }
  }

  async confirm (seat: string, caller: Caller, chat: LiveChat, untilMs: number): Promise<void> {
    const { all, anonymous, owner } = this.keys
    await this.redis.ccgLiveConfirm(all, anonymous, this.keys.caller + callerId(caller), owner + chat.contactId,
      String(this.now()), String(untilMs), seat, member(chat), `${caller.anonymous ? '1' : '0'} ${callerId(caller)}`)
  }

  async release (seat: string, caller: Caller): Promise<void> {
    await this.redis.multi()
      .zrem(this.keys.all, seat).zrem(this.keys.anonymous, seat).zrem(this.keys.caller + callerId(caller), seat)
      .exec()
  }

  async end (chat: LiveChat): Promise<void> {
    await this.redis.ccgLiveEnd(this.keys.all, this.keys.anonymous, this.keys.owner + chat.contactId, member(chat), this.keys.caller)
  }

  async counts () {
    const now = String(this.now())
    const [all, anonymous] = await Promise.all([
      this.redis.zcount(this.keys.all, `(${now}`, '+inf'),
      this.redis.zcount(this.keys.anonymous, `(${now}`, '+inf')
    ])
    return { anonymous, verified: all - anonymous }
  }

  async mayDescribe (chat: LiveChat, everyMs: number, perSecond: number): Promise<boolean> {
    // Per chat first: a chat already asked about lately costs no share of the per-second budget.
    const described = this.keys.described + chat.contactId
    const fresh = await this.redis.set(described, '1', 'PX', everyMs, 'NX')
    if (fresh === null) return false
    const key = this.keys.asked + String(Math.floor(this.now() / 1000))
    const [[, asked] = []] = (await this.redis.multi().incr(key).pexpire(key, 2_000).exec()) ?? []
    if (Number(asked) <= perSecond) return true
    // Not asked after all: the chat may be asked about in the next second, not only in 30.
    await this.redis.del(described)
    return false
  }
}

export interface LiveChatsOptions {
  redis?: Redis
  keyPrefix?: string
  now?: () => number
}

export function createLiveChats (options: LiveChatsOptions = {}): LiveChats {
  const now = options.now ?? Date.now
  return options.redis ? new RedisLiveChats(options.redis, options.keyPrefix ?? '', now) : new LocalLiveChats(now)
}
