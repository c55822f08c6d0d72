import { deflateRawSync, inflateRawSync } from 'node:zlib'
import { DeleteItemCommand, GetItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb'
import { delay, systemClock } from '../clock.js'
import { EXPIRES, isConditionFailed, KEY, TTL, ttlSeconds, type StateTable } from '../dynamodb.js'
import { callerId, SeatBook, type Caller, type LiveChat, type LiveChats, type SeatEntry, type SeatLimits, type TakeResult } from './live-chats.js'

/**
 * The live-chat ledger in the state table (STATE_STORE=dynamodb): the whole ledger is one item,
 * read, changed with the same seat logic as in memory (SeatBook), and written back only if its
 * `version` is still the one read (optimistic concurrency). Two replicas that took the last seat
 * from the same read cannot both write it: the second write fails its condition, reads again and
 * is refused. A write that keeps losing gives up after a few tries and throws, so the caller's
 * fallback or refusal runs instead of a start waiting on a busy ledger.
 *
 * Why one item instead of an item per seat: the limits are counts over all seats, and DynamoDB
 * cannot count under a condition; transactions over a counter item and a seat item would do, but
 * then expiry by time needs a sweeper, where one item is swept by every write. The seats are stored
 * deflated (about 48 bytes a seat: 5,000 seats take about 240 KB of the 400 KB an item may hold, and
 * each write costs a write unit per KB), and caller keys only as their hash. The price is that writes
 * to the ledger take turns: starts that find free seats at the same moment retry each other's
 * conflicts (on dynalite, 30 at once from 30 clients all got a seat within about 3 s).
 */

/** Tries of one change before giving up, and the longest pause between two (random, growing from 10 ms). */
const ATTEMPTS = 25
const MAX_PAUSE_MS = 250

interface Ledger { book: SeatBook; version: number }

/** A seat as stored: [member, caller hash, 1 if anonymous, until ms]. */
type StoredSeat = [string, string, 0 | 1, number]

export interface DynamoLiveChatsOptions {
  table: StateTable
  now?: () => number
}

export function createDynamoLiveChats (options: DynamoLiveChatsOptions): LiveChats {
  return new DynamoLiveChats(options.table, options.now ?? Date.now)
}

/** In the ledger, callers are known by their hash. */
const stored = (caller: Caller): Caller => ({ key: callerId(caller), anonymous: caller.anonymous })

class DynamoLiveChats implements LiveChats {
  private readonly keys: { ledger: string; described: string; asked: string }

  constructor (private readonly table: StateTable, private readonly now: () => number) {
    const base = `${table.prefix}live:`
    this.keys = { ledger: `${base}ledger`, described: `${base}described:`, asked: `${base}asked:` }
  }

  async take (caller: Caller, limits: SeatLimits, untilMs: number): Promise<TakeResult> {
    return this.change((book) => {
      const result = book.take(stored(caller), limits, untilMs, () => {})
      return { result, changed: result.ok }
    })
  }

  async confirm (seat: string, caller: Caller, chat: LiveChat, untilMs: number): Promise<void> {
    await this.change((book) => ({ result: book.confirm(seat, stored(caller), chat, untilMs), changed: true }))
  }

  async release (seat: string): Promise<void> {
    await this.change((book) => ({ result: undefined, changed: book.remove(seat) }))
  }

  async end (chat: LiveChat): Promise<void> {
    await this.change((book) => ({ result: undefined, changed: book.end(chat) }))
  }

  async counts () {
    const { book } = await this.read()
    book.sweep(this.now())
    return book.counts()
  }

  async mayDescribe (chat: LiveChat, everyMs: number, perSecond: number): Promise<boolean> {
    const { client, name } = this.table
    const now = this.now()
    const described = { [KEY]: { S: this.keys.described + chat.contactId } }
    const until = now + everyMs
    // Per chat first: a chat already asked about lately costs no share of the per-second budget.
    try {
      await client.send(new PutItemCommand({
        TableName: name,
        Item: { ...described, [EXPIRES]: { N: String(until) }, [TTL]: { N: String(ttlSeconds(until)) } },
        ConditionExpression: 'attribute_not_exists(#exp) OR #exp <= :now',
        ExpressionAttributeNames: { '#exp': EXPIRES },
        ExpressionAttributeValues: { ':now': { N: String(now) } }
      }))
    } catch (err) {
      if (isConditionFailed(err)) return false
      throw err
    }
    const second = Math.floor(now / 1000)
    try {
      await client.send(new UpdateItemCommand({
        TableName: name,
        Key: { [KEY]: { S: this.keys.asked + String(second) } },
        UpdateExpression: 'ADD #asked :one SET #exp = :exp, #ttl = :ttl',
        ConditionExpression: 'attribute_not_exists(#asked) OR #asked < :budget',
        ExpressionAttributeNames: { '#asked': 'asked', '#exp': EXPIRES, '#ttl': TTL },
        ExpressionAttributeValues: {
          ':one': { N: '1' }, ':budget': { N: String(perSecond) },
          ':exp': { N: String((second + 1) * 1000) }, ':ttl': { N: String(ttlSeconds((second + 1) * 1000)) }
        }
      }))
      return true
    } catch (err) {
      if (!isConditionFailed(err)) throw err
    }
    // Not asked after all: the chat may be asked about in the next second, not only after its window.
    await client.send(new DeleteItemCommand({
      TableName: name,
      Key: described,
      ConditionExpression: '#exp = :mine',
      ExpressionAttributeNames: { '#exp': EXPIRES },
      ExpressionAttributeValues: { ':mine': { N: String(until) } }
    })).catch((err: unknown) => { if (!isConditionFailed(err)) throw err })
    return false
  }

  /**
   * Reads the ledger, sweeps it, applies `apply` and writes it back if it changed and nobody wrote
   * it meanwhile; otherwise reads again, after a pause that grows and is random so two replicas
   * do not collide again in step.
   */
  private async change<T> (apply: (book: SeatBook) => { result: T; changed: boolean }): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const ledger = await this.read()
      ledger.book.sweep(this.now())
      const { result, changed } = apply(ledger.book)
      if (!changed) return result
      try {
        await this.write(ledger)
        return result
      } catch (err) {
        if (!isConditionFailed(err)) throw err
        if (attempt >= ATTEMPTS) throw new Error(`live chats: the ledger was written by others ${ATTEMPTS} times in a row; giving up`, { cause: err })
      }
      await delay(systemClock, Math.random() * Math.min(MAX_PAUSE_MS, 10 * 2 ** attempt))
    }
  }

  private async read (): Promise<Ledger> {
    const { Item: item } = await this.table.client.send(new GetItemCommand({
      TableName: this.table.name, Key: { [KEY]: { S: this.keys.ledger } }, ConsistentRead: true
    }))
    if (!item?.seats?.B || !item.version?.N) return { book: new SeatBook(), version: 0 }
    return { book: decodeSeats(item.seats.B), version: Number(item.version.N) }
  }

  private async write ({ book, version }: Ledger): Promise<void> {
    // The item lasts as long as its last seat; DynamoDB's TTL clears an empty or forgotten ledger.
    let last = this.now()
    for (const [, seat] of book.entries()) last = Math.max(last, seat.until)
    await this.table.client.send(new PutItemCommand({
      TableName: this.table.name,
      Item: {
        [KEY]: { S: this.keys.ledger },
        version: { N: String(version + 1) },
        seats: { B: encodeSeats(book) },
        [EXPIRES]: { N: String(last) },
        [TTL]: { N: String(ttlSeconds(last)) }
      },
      ExpressionAttributeNames: { '#v': 'version' },
      ...(version === 0
        ? { ConditionExpression: 'attribute_not_exists(#v)' }
        : { ConditionExpression: '#v = :read', ExpressionAttributeValues: { ':read': { N: String(version) } } })
    }))
  }
}

/** The seats as the ledger item stores them: deflated JSON of [member, caller hash, 1 if anonymous, until ms]. */
export function encodeSeats (book: SeatBook): Uint8Array {
  const seats: StoredSeat[] = []
  for (const [m, seat] of book.entries()) seats.push([m, seat.caller, seat.anonymous ? 1 : 0, seat.until])
  return deflateRawSync(JSON.stringify(seats))
}

function decodeSeats (blob: Uint8Array): SeatBook {
  const seats = JSON.parse(inflateRawSync(blob).toString('utf8')) as StoredSeat[]
  return new SeatBook(seats.map(([m, caller, anonymous, until]): [string, SeatEntry] => [m, { caller, anonymous: anonymous === 1, until }]))
}
