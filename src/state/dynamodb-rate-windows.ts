import { UpdateItemCommand } from '@aws-sdk/client-dynamodb'
import { EXPIRES, isConditionFailed, KEY, TTL, ttlSeconds, type StateTable } from '../dynamodb.js'
import type { RateCount, RateWindows } from './rate-windows.js'

const COUNT = 'hits'

/**
 * Windows in the state table, one item each (`<prefix>rate-limit:<key>`). A hit is one UpdateItem
 * that adds to a live window (or creates one); when the window has expired, a second one starts a
 * new window, conditioned on the old one still being expired, so two replicas cannot both reset it.
 * Times are this replica's clock: windows are as exact as the replicas' clocks agree.
 */
export function dynamoRateWindows (table: StateTable, now: () => number): RateWindows {
  const prefix = `${table.prefix}rate-limit:`
  const names = { '#pk': KEY, '#hits': COUNT, '#exp': EXPIRES, '#ttl': TTL }

  async function update (key: string, windowMs: number, fresh: boolean): Promise<RateCount | undefined> {
    const t = now()
    const expiresMs = t + windowMs
    try {
      const { Attributes } = await table.client.send(new UpdateItemCommand({
        TableName: table.name,
        Key: { [KEY]: { S: prefix + key } },
        // A live window counts on; a new one (absent, or expired and reset here) starts at one.
        UpdateExpression: fresh
          ? 'SET #hits = :one, #exp = :exp, #ttl = :ttl'
          : 'ADD #hits :one SET #exp = if_not_exists(#exp, :exp), #ttl = if_not_exists(#ttl, :ttl)',
        ConditionExpression: fresh ? '#exp <= :now' : 'attribute_not_exists(#pk) OR #exp > :now',
        ExpressionAttributeNames: fresh ? { '#hits': COUNT, '#exp': EXPIRES, '#ttl': TTL } : names,
        ExpressionAttributeValues: {
          ':one': { N: '1' }, ':now': { N: String(t) }, ':exp': { N: String(expiresMs) }, ':ttl': { N: String(ttlSeconds(expiresMs)) }
        },
        ReturnValues: 'ALL_NEW'
      }))
      return { current: Number(Attributes?.[COUNT]?.N), ttl: Math.max(0, Number(Attributes?.[EXPIRES]?.N) - t) }
    } catch (err) {
      if (isConditionFailed(err)) return undefined
      throw err
    }
  }

  return {
    async incr (key, windowMs) {
      // Live or absent; else expired: reset it; else another replica reset it meanwhile: count in theirs.
      return await update(key, windowMs, false) ?? await update(key, windowMs, true) ?? await update(key, windowMs, false) ??
        Promise.reject(new Error('the rate window changed under every attempt'))
    }
  }
}
