import { ChatCapacityReserved, ChatQuotaReached, GatewayError, TooManyOpenChats } from '../errors.js'
import type { Caller, Limit, LiveChat, LiveChats, SeatLimits } from './live-chats.js'

export interface ChatQuotaEvents {
  /** A start was refused on a chat's account (after asking Connect about the chats held). */
  refused? (limit: Limit, caller: Caller): void
  /** Connect said a counted chat had ended: its seat was freed. */
  freed? (chat: LiveChat): void
  /** Shared state failed: each replica counts alone until it answers again (told once per outage). */
  stateLost? (err: unknown): void
  /** One decision taken by this replica alone while shared state is gone. */
  decidedAlone? (): void
  stateBack? (): void
  /** DescribeContact failed; the chat stays counted. */
  describeFailed? (err: unknown): void
}

export interface ChatQuotaOptions {
  liveChats: LiveChats
  /**
   * This replica's own ledger, used while `liveChats` (Redis) cannot answer: the same limits, applied
   * to the chats this replica started. Without it (no Redis) `liveChats` is already local.
   */
  fallback?: LiveChats
  limits: SeatLimits
  /** Does Connect say this chat has ended? Throws when it cannot say. */
  hasEnded: (chat: LiveChat) => Promise<boolean>
  /** How long a seat is held for a start that has not been answered yet. */
  pendingMs: number
  /** Each chat is asked about at most this often, across replicas. */
  describeEveryMs?: number
  /** DescribeContact calls per second for the whole deployment, at most. */
  describePerSecond?: number
  now?: () => number
  events?: ChatQuotaEvents
}

/** A seat taken for one start: confirmed with the chat Connect opened, or given back. */
export interface Seat {
  confirm (chat: LiveChat, durationMinutes: number): Promise<void>
  release (): Promise<void>
}

// What a refused caller is told to wait: long enough for a chat to end or a seat to be given back.
const RETRY_AFTER = { caller: 60, anonymous: 30, total: 30 } as const

/**
 * Connect's concurrent-chat quota, guarded: each caller holds at most `perCaller` live chats,
 * anonymous callers together at most their share, everyone together at most the quota. Connect is
 * the source of truth for whether a chat still lives: before a start is refused, the chats held on
 * that account are checked with DescribeContact (bounded in rate, across replicas) and the ended
 * ones freed.
 */
export class ChatQuota {
  private readonly now: () => number
  private stateDown = false

  constructor (private readonly options: ChatQuotaOptions) {
    this.now = options.now ?? Date.now
  }

  get limits (): SeatLimits { return this.options.limits }

  /** A seat for `caller`, or the refusal: TooManyOpenChats, ChatCapacityReserved, ChatQuotaReached. */
  async take (caller: Caller): Promise<Seat> {
    try {
      const seat = await this.takeFrom(this.options.liveChats, caller)
      this.up()
      return seat
    } catch (err) {
      if (err instanceof GatewayError || !this.options.fallback) throw err
      this.down(err)
      this.options.events?.decidedAlone?.()
      // Counting alone keeps every limit per replica (a caller holds at most perCaller chats on
      // each), which Connect's own quota still bounds; refusing everyone would turn a Redis outage
      // into a chat outage.
      return this.takeFrom(this.options.fallback, caller)
    }
  }

  private async takeFrom (ledger: LiveChats, caller: Caller): Promise<Seat> {
    const { limits } = this.options
    let result = await ledger.take(caller, limits, this.now() + this.options.pendingMs)
    if (!result.ok && await this.freeEnded(ledger, result.held)) result = await ledger.take(caller, limits, this.now() + this.options.pendingMs)
    if (!result.ok) {
      this.options.events?.refused?.(result.limit, caller)
      throw refusal(result.limit, caller)
    }
    const { seat } = result
    return {
      confirm: async (chat, durationMinutes) => {
        await this.quietly(ledger, () => ledger.confirm(seat, caller, chat, this.now() + durationMinutes * 60_000))
      },
      release: async () => { await this.quietly(ledger, () => ledger.release(seat, caller)) }
    }
  }

  /** The chat ended (the gateway stopped it): its seat is free, wherever it was counted. */
  async ended (chat: LiveChat): Promise<void> {
    await this.options.fallback?.end(chat)
    await this.quietly(this.options.liveChats, () => this.options.liveChats.end(chat))
  }

  /** Live chats now, anonymous and verified (for the gauge); this replica's own while shared state is gone. */
  async counts (): Promise<{ anonymous: number; verified: number }> {
    try {
      return await this.options.liveChats.counts()
    } catch (err) {
      if (!this.options.fallback) throw err
      return this.options.fallback.counts()
    }
  }

  /** Anonymous live chats above half their share: the point where a human check is asked when busy. */
  async busy (): Promise<boolean> {
    try {
      const { anonymous } = await this.options.liveChats.counts()
      this.up()
      return anonymous * 2 > this.options.limits.anonymous
    } catch (err) {
      this.down(err)
      // Without the deployment's count, assume the worst: ask for the check.
      return true
    }
  }

  /** Asks Connect about the chats a refusal named; true when any had ended (and was freed). */
  private async freeEnded (liveChats: LiveChats, held: LiveChat[]): Promise<boolean> {
    const { describeEveryMs = 30_000, describePerSecond = 5 } = this.options
    const asked: LiveChat[] = []
    for (const chat of held) if (await liveChats.mayDescribe(chat, describeEveryMs, describePerSecond)) asked.push(chat)
    const ended = await Promise.all(asked.map(async (chat) => {
      try {
        return await this.options.hasEnded(chat)
      } catch (err) {
        this.options.events?.describeFailed?.(err)
        return false
      }
    }))
    let freed = false
    for (const [i, chat] of asked.entries()) {
      if (!ended[i]) continue
      await liveChats.end(chat)
      this.options.events?.freed?.(chat)
      freed = true
    }
    return freed
  }

  /** Book-keeping after Connect answered: a lost write only makes a seat live until its bound. */
  private async quietly (ledger: LiveChats, run: () => Promise<void>): Promise<void> {
    // This replica's own ledger cannot fail, and says nothing about whether Redis is back.
    if (ledger === this.options.fallback) return run()
    try {
      await run()
      this.up()
    } catch (err) {
      this.down(err)
    }
  }

  private down (err: unknown): void {
    if (this.stateDown) return
    this.stateDown = true
    this.options.events?.stateLost?.(err)
  }

  private up (): void {
    if (!this.stateDown) return
    this.stateDown = false
    this.options.events?.stateBack?.()
  }
}

function refusal (limit: Limit, caller: Caller) {
  if (limit === 'caller') {
    return new TooManyOpenChats('You already have the most open chats allowed; end one (or wait for it to end) before starting another',
      { retryAfterSeconds: RETRY_AFTER.caller })
  }
  if (limit === 'anonymous' && caller.anonymous) {
    return new ChatCapacityReserved('All chat lines for guests are busy; please try again in a little while, or sign in',
      { retryAfterSeconds: RETRY_AFTER.anonymous })
  }
  return new ChatQuotaReached('All chat lines are busy; please try again in a little while', { retryAfterSeconds: RETRY_AFTER.total })
}
