import type { Test } from 'tap'
import { Redis } from 'ioredis'
import { randomUUID } from 'node:crypto'

export const redisTestUrl = () => process.env.REDIS_TEST_URL ?? 'redis://127.0.0.1:6379'

/**
 * For `t.test(name, { skip: await redisSkip() }, …)`: false when Redis answers, else the reason to
 * skip. In CI (CI=true) a missing Redis is a failure, never a skip.
 */
export async function redisSkip (): Promise<false | string> {
  const client = new Redis(redisTestUrl(), { lazyConnect: true, connectTimeout: 1_000, maxRetriesPerRequest: 0, retryStrategy: () => null })
  let cause: Error | undefined
  client.on('error', (err: Error) => { cause ??= err })
  try {
    await client.connect()
    await client.ping()
    return false
  } catch (err) {
    const reason = `no Redis at ${redisTestUrl()} (${(cause ?? err as Error).message}); start one or set REDIS_TEST_URL`
    if (process.env.CI === 'true') throw new Error(`CI=true: Redis tests must run, but ${reason}`, { cause: err })
    return reason
  } finally {
    client.disconnect()
  }
}

/** A key prefix no other test shares; its keys are deleted when the test ends. */
export function redisKeyPrefix (t: Test): string {
  const prefix = `ccg-test:${randomUUID()}:`
  t.teardown(async () => {
    const client = new Redis(redisTestUrl(), { maxRetriesPerRequest: 0, retryStrategy: () => null })
    client.on('error', () => {})
    try {
      const keys = await client.keys(`${prefix}*`)
      if (keys.length > 0) await client.del(...keys)
    } catch { /* Redis went away: the keys expire on their own */ } finally {
      client.disconnect()
    }
  })
  return prefix
}
