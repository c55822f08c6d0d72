import { Agent } from 'node:https'
import { Agent as HttpAgent } from 'node:http'
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb'
import { NodeHttpHandler } from '@smithy/node-http-handler'

/**
 * The one DynamoDB table that holds shared state when STATE_STORE=dynamodb (the serverless mode):
 * what Redis holds for the container mode. Every item is keyed by `pk` alone; `exp` says when it
 * stops counting (epoch ms: every read and every condition checks it, because DynamoDB's TTL deletes
 * late, up to days after), and `ttl` (epoch seconds, the table's TTL attribute) lets DynamoDB clear
 * it away afterwards. Writes that must not race are conditional writes, never read-then-write.
 */
export interface StateTable {
  readonly client: DynamoDBClient
  readonly name: string
  /** Put before every key (REDIS_KEY_PREFIX's counterpart), so deployments and tests can share a table. */
  readonly prefix: string
}

/** Partition key attribute (string). */
export const KEY = 'pk'
/** Epoch milliseconds when an item stops counting. */
export const EXPIRES = 'exp'
/** Epoch seconds: the table's TTL attribute (deletion some time after `exp`). */
export const TTL = 'ttl'

/** The `ttl` value for an item that stops counting at `expiresMs`: a minute of slack after it. */
export const ttlSeconds = (expiresMs: number) => Math.ceil(expiresMs / 1000) + 60

export const isConditionFailed = (err: unknown) => (err as { name?: string } | undefined)?.name === 'ConditionalCheckFailedException'

export interface StateTableOptions {
  name: string
  prefix?: string
  region?: string
  /** Longest wait for one answer, as for Redis: past it the caller falls back or refuses. */
  commandTimeoutMs?: number
  /** Extra SDK settings (tests pass an endpoint and static credentials; AWS_ENDPOINT_URL_DYNAMODB works too). */
  overrides?: Partial<DynamoDBClientConfig>
}

/**
 * A client that never makes a request wait long: one retry, bounded connect and request times
 * (`throwOnRequestTimeout`, so a slow answer is an error, not a warning), kept-alive sockets.
 */
export function createStateTable ({ name, prefix = '', region, commandTimeoutMs = 250, overrides = {} }: StateTableOptions): StateTable {
  const client = new DynamoDBClient({
    region: region ?? process.env.AWS_REGION ?? 'us-east-1',
    maxAttempts: 2,
    cacheMiddleware: true,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: commandTimeoutMs,
      requestTimeout: commandTimeoutMs,
      throwOnRequestTimeout: true,
      httpsAgent: new Agent({ keepAlive: true, maxSockets: 50 }),
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets: 50 })
    }),
    ...overrides
  })
  return { client, name, prefix }
}

/** The table's shape, for the CDK app, `npm run dev` and the tests: one string key, TTL on `ttl`. */
export const TABLE_SCHEMA = {
  AttributeDefinitions: [{ AttributeName: KEY, AttributeType: 'S' as const }],
  KeySchema: [{ AttributeName: KEY, KeyType: 'HASH' as const }],
  BillingMode: 'PAY_PER_REQUEST' as const
}
