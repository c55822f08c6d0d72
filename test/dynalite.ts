import type { Test } from 'tap'
import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb'
import dynalite from 'dynalite'
import { createStateTable, TABLE_SCHEMA, type StateTable } from '../src/dynamodb.js'

/** Static credentials for dynalite, which checks their shape and nothing else. */
export const DYNALITE_CREDENTIALS = { accessKeyId: 'dynalite', secretAccessKey: 'dynalite' }

export interface Dynalite {
  /** http://127.0.0.1:port: give it as the SDK's endpoint (or AWS_ENDPOINT_URL_DYNAMODB to a child). */
  endpoint: string
  /** The state table, created on start. */
  tableName: string
  /** A StateTable client with a key prefix no other test shares; destroyed at teardown. */
  table (t: Test, options?: { commandTimeoutMs?: number }): StateTable
}

/**
 * An in-memory DynamoDB (dynalite) of the test's own on a free loopback port, with the state table
 * created; closed at teardown. One per test file is enough: each test takes its own key prefix.
 */
export async function startDynalite (t: Test): Promise<Dynalite> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const tableName = 'ccg-state'
  const admin = new DynamoDBClient({ region: 'us-east-1', endpoint, credentials: DYNALITE_CREDENTIALS })
  try {
    await admin.send(new CreateTableCommand({ TableName: tableName, ...TABLE_SCHEMA }))
  } finally {
    admin.destroy()
  }
  return {
    endpoint,
    tableName,
    table (test, options = {}) {
      const table = createStateTable({
        name: tableName,
        prefix: `ccg-test:${randomUUID()}:`,
        commandTimeoutMs: options.commandTimeoutMs ?? 2_000,
        overrides: { endpoint, credentials: DYNALITE_CREDENTIALS }
      })
      test.teardown(() => table.client.destroy())
      return table
    }
  }
}
