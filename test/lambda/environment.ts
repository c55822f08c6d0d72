/**
 * One execution environment of the Lambda function per handler, against the Connect simulator over
 * HTTP: the helpers the Lambda tests share.
 */
import type { Test } from 'tap'
import { createHandler, type LambdaDeps, type LambdaHandler } from '../../src/lambda-handler.js'
import { startSimulator, type ConnectSimulator } from '@connect-chat-gateway/simulator'
import { ORIGIN } from '../helper.js'
import { chatStartBody, httpApiEvent, type EventOptions } from './events.js'

export const RESUME_SECRET = 'lambda-resume-key-'.padEnd(40, 'l')

/** The function's environment as the CDK app would set it (production mode), with the test's changes. */
export function functionEnv (env: Record<string, string> = {}): Record<string, string> {
  return {
    AWS_REGION: 'eu-west-2',
    CONNECT_INSTANCE_ID: '8f2e4a77-1c3b-4d5e-9f60-7a8b9c0d1e2f',
    CONNECT_CONTACT_FLOW_ID: '1b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b',
    ALLOWED_ORIGINS: ORIGIN,
    RESUME_TOKEN_SECRET: RESUME_SECRET,
    LOG_LEVEL: 'info',
    CONNECT_ATTEMPT_TIMEOUT_MS: '1000',
    CHAT_START_TIMEOUT_MS: '5000',
    RATE_LIMIT_MAX: '100000',
    MAX_OPEN_CHATS_PER_CALLER: '1000000',
    CONNECT_MAX_ACTIVE_CHATS: '1000000',
    ...env
  }
}

export interface Environment { handler: LambdaHandler; logs: () => string }

/** One execution environment of the function: its own app, the simulator as Connect. */
export function environment (t: Test, sim: ConnectSimulator, env: Record<string, string | undefined>, deps: LambdaDeps = {}): Environment {
  const chunks: string[] = []
  const logStream = { write (chunk: string) { chunks.push(chunk); return true } } as unknown as NodeJS.WritableStream
  const handler = createHandler(env, {
    logStream,
    connectOverrides: { endpoint: sim.url, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' } },
    ...deps
  })
  t.teardown(() => handler.close())
  return { handler, logs: () => chunks.join('') }
}

export async function simulator (t: Test, options: Parameters<typeof startSimulator>[0] = {}) {
  const sim = await startSimulator({ participant: false, ...options })
  t.teardown(() => sim.close())
  return sim
}

/** What the tests read of an answer's body. */
export interface Reply {
  code?: string
  message?: string
  reason?: string
  data: { startChatResult: { ContactId: string; ParticipantId: string; ParticipantToken: string }; resumeToken: string; endToken: string }
}

export async function invoke (env: Environment, options: EventOptions = {}) {
  const result = await env.handler(httpApiEvent(options), { awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678' })
  return { ...result, json: () => JSON.parse(result.body) as Reply }
}

/** A chat start from `sourceIp`, as the widget sends it. */
export const start = (env: Environment, sourceIp: string, extra: EventOptions = {}) => invoke(env, { sourceIp, body: chatStartBody(), ...extra })
