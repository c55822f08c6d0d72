import { ChatCapacityReserved, ChatQuotaReached, StateUnavailable, TooManyOpenChats } from '../errors.js'
import type { Caller, Limit, LiveChat, LiveChats, SeatLimits } from './live-chats.js'

export interface ChatQuotaEvents {
  /** A start was refused on a chat's account (after asking Connect about the chats held). */
  refused? (limit: Limit, caller: Caller): void
  /** Connect said a counted chat had ended: its seat was freed. */
  freed? (chat: LiveChat): void
  /** Shared state failed: anonymous starts are refused until it answers again (told once per outage). */
  stateLost? (err: unknown): void
  stateBack? (): void
  /** DescribeContact failed; the chat stays counted. */
  describeFailed? (err: unknown): void
}

export interface ChatQuotaOptions {
  liveChats: LiveChats
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

const NO_SEAT: Seat = { confirm: async () => {}, release: async () => {} }

// What a refused caller is told to wait: long enough for a chat to end or a seat to be given back.
const RETRY_AFTER = { caller: 60, anonymous: 30, total: 30, state: 5 } as const

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

  /** A seat for `caller`, or the refusal: TooManyOpenChats, ChatCapacityReserved, ChatQuotaReached, StateUnavailable. */
  async take (caller: Caller): Promise<Seat> {
    const { liveChats, limits } = this.options
    let result
    try {
      result = await liveChats.take(caller, limits, this.now() + this.options.pendingMs)
      if (!result.ok && await this.freeEnded(result.held)) result = await liveChats.take(caller, limits, this.now() + this.options.pendingMs)
      this.up()
    } catch (err) {
      this.down(err)
      // Bots must not get a free hand while the count is gone; a verified customer's start goes on
      // uncounted (Connect's own quota still holds).
      if (caller.anonymous) throw new StateUnavailable('Chat is briefly unavailable; please try again shortly', { retryAfterSeconds: RETRY_AFTER.state })
      return NO_SEAT
    }
    if (!result.ok) {
      this.options.events?.refused?.(result.limit, caller)
      throw refusal(result.limit, caller)
    }
    const { seat } = result
    return {
      confirm: async (chat, durationMinutes) => {
        await this.quietly(() => liveChats.confirm(seat, caller, chat, this.now() + durationMinutes * 60_000))
      },
      release: async () => { await this.quietly(() => liveChats.release(seat, caller)) }
    }
  }

  /** The chat ended (the gateway stopped it): its seat is free. */
  async ended (chat: LiveChat): Promise<void> {
    await this.quietly(() => this.options.liveChats.end(chat))
  }

  /** Live chats now, anonymous and verified (for the gauge). */
  counts (): Promise<{ anonymous: number; verified: number }> { return this.options.liveChats.counts() }

  /** Anonymous live chats above half their share: the point where a human check is asked when busy. */
  async busy (): Promise<boolean> {
    try {
      const { anonymous } = await this.options.liveChats.counts()
      this.up()
      return anonymous * 2 > this.options.limits.anonymous
    } catch (err) {
      this.down(err)
      // Without a count, assume the worst: ask for the check.
      return true
    }
  }

  /** Asks Connect about the chats a refusal named; true when any had ended (and was freed). */
  private async freeEnded (held: LiveChat[]): Promise<boolean> {
    const { liveChats, describeEveryMs = 30_000, describePerSecond = 5 } = this.options
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
  private async quietly (run: () => Promise<void>): Promise<void> {
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
