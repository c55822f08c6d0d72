import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { DynamoDBClientConfig } from '@aws-sdk/client-dynamodb'
import type { Redis } from 'ioredis'
import { createDynamoLiveChats } from '../chat/live-chats-dynamodb.js'
import { createLiveChats, type LiveChats } from '../chat/live-chats.js'
import { systemClock, type Clock } from '../clock.js'
import type { AvailabilityShare } from '../connect/availability.js'
import { createStateTable, type StateTable } from '../dynamodb.js'
import { createRedis } from '../redis.js'
import { createStateGuard, type StateGuard } from '../shared-state.js'
import { createSpentProofs, redisClaim, type SpentProofs } from '../trust/human-check.js'
import { createSpentResumes, redisHolds, type SpentResumes } from '../trust/spent-resumes.js'
import { memoryAvailability, redisAvailability } from './availability.js'
import { dynamoAvailability, dynamoClaim, dynamoHolds } from './dynamodb-claims.js'
import { dynamoRateWindows } from './dynamodb-rate-windows.js'
import { memoryRateWindows, redisRateWindows, type RateWindows } from './rate-windows.js'

export type StateStoreKind = 'memory' | 'redis' | 'dynamodb'

/** How each store is named in the log. */
export const STORE_NAMES: Record<StateStoreKind, string> = { memory: 'memory', redis: 'Redis', dynamodb: 'DynamoDB' }

/**
 * The state replicas share (STATE_STORE): in this process (memory), in Redis, or in one DynamoDB
 * table. Each module gets only its facet. What must be shared to be safe (spent tokens, proofs)
 * fails closed through `guard`; rate windows and the availability lock fail open to this process.
 */
export interface StateStore {
  readonly kind: StateStoreKind
  readonly rateWindows: RateWindows
  /** With a shared store: where rate windows are counted while it fails. */
  readonly rateWindowsFallback?: RateWindows
  readonly spentResumes: SpentResumes
  readonly spentProofs: SpentProofs
  readonly liveChats: LiveChats
  /** With a shared ledger: where live chats are counted while it fails. */
  readonly liveChatsFallback?: LiveChats
  readonly availability: AvailabilityShare
  /** The fail-closed rule of a shared store: one outage log, 503 STATE_UNAVAILABLE meanwhile. */
  readonly guard?: StateGuard
  /** Where the pacing schedule is shared (connect/ keeps its scripts and conditions); per process without it. */
  readonly pacing?: PacingShare
  /** Resolves once a fresh client can answer, or after a second (never rejects): the first requests are shared too. */
  ready (): Promise<void>
  close (): Promise<void>
}

/** The pacer's shared schedule: a Redis (schedule, rate learning and roster) or the state table (the schedule). */
export type PacingShare = { redis: Redis; keyPrefix: string } | { table: StateTable }

export interface StateStoreOptions {
  kind: StateStoreKind
  /** Before every key (REDIS_KEY_PREFIX), so deployments and tests can share a Redis or a table. */
  keyPrefix: string
  /** Longest wait for one answer (REDIS_COMMAND_TIMEOUT_MS): the client's bound and the fail-closed deadline. */
  timeoutMs: number
  redisUrl?: string
  tableName?: string
  region?: string
}

export interface StateStoreDeps {
  log?: { warn (obj: object, msg: string): void; info (obj: object, msg: string): void }
  /** The clock of tokens, proofs, live chats and DynamoDB items' expiry. */
  now?: () => number
  /** The time of rate windows counted here or in DynamoDB. */
  clock?: Clock
  /** A request was refused because the store did not confirm (for a metric), by use. */
  onRefused?: (use: string) => void
  /** Errors no request waits on (a client's own, a spend the store missed), by source. */
  onError?: (source: string, err: unknown) => void
  /** Extra DynamoDB SDK settings (tests pass an endpoint and credentials; AWS_ENDPOINT_URL_DYNAMODB works too). */
  dynamoOverrides?: Partial<DynamoDBClientConfig>
}

export function createStateStore (options: StateStoreOptions, deps: StateStoreDeps = {}): StateStore {
  const now = deps.now ?? Date.now
  const clock = deps.clock ?? systemClock
  const windowsNow = () => clock.now()
  if (options.kind === 'memory') {
    return {
      kind: 'memory',
      rateWindows: memoryRateWindows(windowsNow),
      spentResumes: createSpentResumes({ now }),
      spentProofs: createSpentProofs({ now }),
      liveChats: createLiveChats({ now }),
      availability: memoryAvailability(now),
      ready: async () => {},
      close: async () => {}
    }
  }
  const { keyPrefix } = options
  const guard = createStateGuard({ timeoutMs: options.timeoutMs, storeName: STORE_NAMES[options.kind], log: deps.log, onRefused: deps.onRefused, now: windowsNow })
  // A spend or release the store missed leaves the hold standing until it expires: the safe side.
  const onSharedFailed = (err: unknown) => deps.onError?.('resume_tokens', err)
  const local = { rateWindowsFallback: memoryRateWindows(windowsNow) }

  if (options.kind === 'redis') {
    if (options.redisUrl === undefined) throw new Error('STATE_STORE=redis needs a Redis URL')
    const redis = createRedis({ url: options.redisUrl, commandTimeoutMs: options.timeoutMs })
    redis.on('error', (err) => deps.onError?.('redis', err))
    return {
      kind: 'redis',
      ...local,
      pacing: { redis, keyPrefix },
      guard,
      rateWindows: redisRateWindows(redis, keyPrefix),
      spentResumes: createSpentResumes({ shared: redisHolds(redis), keyPrefix, guard, onSharedFailed, now }),
      spentProofs: createSpentProofs({ shared: redisClaim(redis), keyPrefix, guard, now }),
      liveChats: createLiveChats({ redis, keyPrefix, now }),
      liveChatsFallback: createLiveChats({ now }),
      availability: redisAvailability(redis, keyPrefix),
      ready: () => settled(redis, 1_000),
      async close () {
        await redis.quit().catch(() => redis.disconnect())
      }
    }
  }

  if (options.tableName === undefined) throw new Error('STATE_STORE=dynamodb needs a table name')
  const table = createStateTable({ name: options.tableName, prefix: keyPrefix, region: options.region, commandTimeoutMs: options.timeoutMs, overrides: deps.dynamoOverrides })
  return {
    kind: 'dynamodb',
    ...local,
    guard,
    rateWindows: dynamoRateWindows(table, windowsNow),
    spentResumes: createSpentResumes({ shared: dynamoHolds(table, now), keyPrefix, guard, onSharedFailed, now }),
    spentProofs: createSpentProofs({ shared: dynamoClaim(table, now), keyPrefix, guard, now }),
    pacing: { table },
    liveChats: createDynamoLiveChats({ table, now }),
    liveChatsFallback: createLiveChats({ now }),
    availability: dynamoAvailability(table, now),
    ready: async () => {},
    async close () {
      table.client.destroy()
    }
  }
}

/** Gives a fresh client a moment to connect, so the first requests after start-up are shared too. */
async function settled (redis: Redis, ms: number) {
  if (redis.status === 'ready') return
  const stop = new AbortController()
  await Promise.race([
    once(redis, 'ready', { signal: stop.signal }).catch(() => {}),
    sleep(ms, undefined, { signal: stop.signal }).catch(() => {})
  ])
  stop.abort()
}
