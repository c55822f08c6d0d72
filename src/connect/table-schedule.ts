/**
 * The deployment's pacing schedule in the state table (STATE_STORE=dynamodb): the same GCRA
 * schedule as shared-schedule.ts keeps in Redis, as one item whose `exp` is the theoretical arrival
 * time (past it, the bucket is full again). A reservation is one conditional write: either the
 * schedule is idle and starts again from now, or it runs ahead and moves on by one interval if the
 * slot still comes within the start's longest wait. DynamoDB adds under a condition atomically, so
 * replicas reserving at once each get their own slot without retrying.
 *
 * Unlike Redis, DynamoDB cannot tell the time in a condition: the schedule runs on the replicas'
 * clocks (the pacer's Clock), which in AWS agree to within milliseconds. Only reservations and
 * returns are shared: the rate learned from throttles stays with each replica (no pub/sub here), and
 * a slot given back in the middle of the schedule is not remembered (one at its end comes free).
 */
import { GetItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb'
import type { Clock } from '../clock.js'
import { EXPIRES, isConditionFailed, KEY, TTL, ttlSeconds, type StateTable } from '../dynamodb.js'
import type { Slot } from './pacing-schedule.js'
import type { DeploymentSchedule, SharedReservation } from './shared-schedule.js'

/** Conditional writes one reservation tries before it is answered from what it read. */
const ATTEMPTS = 4
const round3 = (x: number): number => Number(x.toFixed(3))

export class TableSchedule implements DeploymentSchedule {
  private readonly key: { [KEY]: { S: string } }
  /** The schedule's end as this replica last saw it: which write to try first. */
  private seenTat = 0

  constructor (private readonly table: StateTable, private readonly clock: Clock) {
    this.key = { [KEY]: { S: `${table.prefix}pacing:schedule` } }
  }

  /** Reserves the next slot if it comes within `maxWaitMs`. A call is allowed at TAT + interval - burst * interval. */
  async reserve (intervalMs: number, burst: number, maxWaitMs: number): Promise<SharedReservation> {
    const interval = round3(intervalMs)
    let tat = this.seenTat
    for (let attempt = 1; ; attempt++) {
      const now = this.clock.now()
      // The slot fits while the schedule's end is at most this far ahead.
      const latest = round3(now + Math.min(maxWaitMs, 1e12) + (burst - 1) * interval)
      const mark = tat < now ? await this.restart(now, interval) : await this.advance(now, interval, latest)
      if (mark !== undefined) {
        this.seenTat = mark
        return this.answer(now, { granted: true, waitMs: Math.max(0, mark - burst * interval - now), mark, intervalMs: interval })
      }
      tat = this.seenTat = await this.read()
      if (tat > latest || attempt >= ATTEMPTS) {
        return this.answer(now, { granted: false, waitMs: Math.max(0, tat + interval - burst * interval - now), mark: NaN, intervalMs: interval })
      }
    }
  }

  /** Gives slots back; those at the end of the schedule come free (returns how many). */
  async release (slots: Array<{ mark: number; intervalMs: number }>): Promise<number> {
    let freed = 0
    for (const { mark, intervalMs } of [...slots].sort((a, b) => b.mark - a.mark)) {
      const before = round3(mark - intervalMs)
      if (!(mark > this.clock.now())) break
      try {
        await this.update('SET #exp = :before, #ttl = :ttl', '#exp = :mark', {
          ':before': { N: before.toFixed(3) }, ':mark': { N: mark.toFixed(3) }, ':ttl': { N: String(ttlSeconds(mark)) }
        })
      } catch (err) {
        if (isConditionFailed(err)) break
        throw err
      }
      this.seenTat = before
      freed++
    }
    return freed
  }

  private answer (now: number, slot: Slot): SharedReservation {
    return { slot, horizonMs: Math.max(0, this.seenTat - now), replicas: 0, record: null, reservedAt: now }
  }

  /** The schedule is idle (or new): it starts again from now. The mark, or undefined if it was not idle. */
  private async restart (now: number, interval: number): Promise<number | undefined> {
    const mark = round3(now + interval)
    try {
      await this.table.client.send(new PutItemCommand({
        TableName: this.table.name,
        Item: { ...this.key, [EXPIRES]: { N: mark.toFixed(3) }, [TTL]: { N: String(ttlSeconds(mark)) } },
        ConditionExpression: 'attribute_not_exists(#exp) OR #exp < :now',
        ExpressionAttributeNames: { '#exp': EXPIRES },
        ExpressionAttributeValues: { ':now': { N: String(now) } }
      }))
      return mark
    } catch (err) {
      if (isConditionFailed(err)) return undefined
      throw err
    }
  }

  /** The schedule runs ahead: one interval more, if that slot comes no later than `latest` allows. */
  private async advance (now: number, interval: number, latest: number): Promise<number | undefined> {
    try {
      const { Attributes: after } = await this.update('SET #exp = #exp + :interval, #ttl = :ttl', '#exp >= :now AND #exp <= :latest', {
        ':interval': { N: interval.toFixed(3) }, ':now': { N: String(now) }, ':latest': { N: latest.toFixed(3) },
        ':ttl': { N: String(ttlSeconds(latest + interval)) }
      })
      return Number(after?.[EXPIRES]?.N)
    } catch (err) {
      if (isConditionFailed(err)) return undefined
      throw err
    }
  }

  private update (expression: string, condition: string, values: Record<string, { N: string }>) {
    return this.table.client.send(new UpdateItemCommand({
      TableName: this.table.name,
      Key: this.key,
      UpdateExpression: expression,
      ConditionExpression: condition,
      ExpressionAttributeNames: { '#exp': EXPIRES, '#ttl': TTL },
      ExpressionAttributeValues: values,
      ReturnValues: 'UPDATED_NEW'
    }))
  }

  /** The schedule's end now (0 when there is none). */
  private async read (): Promise<number> {
    const { Item: item } = await this.table.client.send(new GetItemCommand({ TableName: this.table.name, Key: this.key, ConsistentRead: true }))
    return Number(item?.[EXPIRES]?.N ?? 0)
  }
}
