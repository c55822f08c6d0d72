import { DeleteItemCommand, GetItemCommand, PutItemCommand, UpdateItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb'
import type { AvailabilityShare } from '../connect/availability.js'
import { EXPIRES, isConditionFailed, KEY, TTL, ttlSeconds, type StateTable } from '../dynamodb.js'
import type { SharedClaim } from '../trust/human-check.js'
import type { SharedHolds } from '../trust/spent-resumes.js'

/**
 * Claims, holds and the poller lock in the state table: each taken by one conditional PutItem that
 * succeeds only where no live item stands (absent, or past its `exp`: TTL deletes late), and given
 * back only by a write conditioned on its owner. A lost condition is an answer, not an error.
 */

const NAMES = { '#pk': KEY, '#exp': EXPIRES }
/** No live item: none at all, or one whose time is up. */
const FREE = 'attribute_not_exists(#pk) OR #exp <= :now'

const item = (key: string, expiresMs: number, extra: Record<string, AttributeValue> = {}): Record<string, AttributeValue> =>
  ({ [KEY]: { S: key }, [EXPIRES]: { N: String(expiresMs) }, [TTL]: { N: String(ttlSeconds(expiresMs)) }, ...extra })

/** Runs a conditional write: true when it was made, false when its condition did not hold. */
async function conditional (write: Promise<unknown>): Promise<boolean> {
  try {
    await write
    return true
  } catch (err) {
    if (isConditionFailed(err)) return false
    throw err
  }
}

/** Puts `key` (owned by `owner`) for `ttlMs` unless a live item stands, or one `owner` already owns when `renew`. */
function take (table: StateTable, now: () => number, key: string, owner: string, ttlMs: number, renew = false) {
  const t = now()
  return conditional(table.client.send(new PutItemCommand({
    TableName: table.name,
    Item: item(key, t + ttlMs, { owner: { S: owner } }),
    ConditionExpression: renew ? `${FREE} OR #owner = :owner` : FREE,
    ExpressionAttributeNames: { ...NAMES, ...(renew ? { '#owner': 'owner' } : {}) },
    ExpressionAttributeValues: { ':now': { N: String(t) }, ...(renew ? { ':owner': { S: owner } } : {}) }
  })))
}

/** Deletes `key` if `owner` still owns it (and it has not been spent: a spent item's owner changed). */
function giveBack (table: StateTable, key: string, owner: string) {
  return conditional(table.client.send(new DeleteItemCommand({
    TableName: table.name,
    Key: { [KEY]: { S: key } },
    ConditionExpression: '#owner = :owner',
    ExpressionAttributeNames: { '#owner': 'owner' },
    ExpressionAttributeValues: { ':owner': { S: owner } }
  })))
}

/** Single-use claims (human-check proofs), keyed whole by the caller: the first conditional put wins. */
export const dynamoClaim = (table: StateTable, now: () => number): SharedClaim =>
  (key, ttlMs) => take(table, now, key, '1', ttlMs)

/** Resume-token holds, keyed whole by the caller: `held:<holder>` while held, `spent:<holder>` once spent, expiring with the hold. */
export function dynamoHolds (table: StateTable, now: () => number): SharedHolds {
  return {
    hold: (key, holder, ttlMs) => take(table, now, key, `held:${holder}`, ttlMs),
    async spend (key, holder, ttlMs) {
      const expiresMs = now() + ttlMs
      // Only our own hold: one that expired and was taken by another is theirs to spend.
      await conditional(table.client.send(new UpdateItemCommand({
        TableName: table.name,
        Key: { [KEY]: { S: key } },
        UpdateExpression: 'SET #owner = :spent, #exp = :exp, #ttl = :ttl',
        ConditionExpression: '#owner = :held',
        ExpressionAttributeNames: { '#owner': 'owner', '#exp': EXPIRES, '#ttl': TTL },
        ExpressionAttributeValues: {
          ':spent': { S: `spent:${holder}` }, ':held': { S: `held:${holder}` },
          ':exp': { N: String(expiresMs) }, ':ttl': { N: String(ttlSeconds(expiresMs)) }
        }
      })))
    },
    async release (key, holder) {
      await giveBack(table, key, `held:${holder}`)
    }
  }
}

/** The availability poller's lock (free, expired or ours) and the state it last wrote, under `availability:`. */
export function dynamoAvailability (table: StateTable, now: () => number): AvailabilityShare {
  const lockKey = `${table.prefix}availability:lock`
  const stateKey = `${table.prefix}availability:state`
  return {
    lock: (token, ttlMs) => take(table, now, lockKey, token, ttlMs, true),
    async unlock (token) {
      await giveBack(table, lockKey, token)
    },
    async read () {
      const { Item } = await table.client.send(new GetItemCommand({ TableName: table.name, Key: { [KEY]: { S: stateKey } }, ConsistentRead: true }))
      if (!Item || Number(Item[EXPIRES]?.N) <= now()) return undefined
      return Item.state?.S
    },
    async write (json, ttlMs) {
      await table.client.send(new PutItemCommand({ TableName: table.name, Item: item(stateKey, now() + ttlMs, { state: { S: json } }) }))
    }
  }
}
