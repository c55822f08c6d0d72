import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'

/** A secret as Secrets Manager stores it: a string, or (not supported by the function) binary. */
export type StoredSecret = { string: string } | { binary: Buffer }

/** What the stand-in does to the next request instead of answering it. */
export type Fault = 'hang' | 'internal-error'

export interface SecretsManagerStandIn {
  url: string
  /** By name or full ARN; a secret is found under either. */
  secrets: Map<string, StoredSecret>
  /** Every request, in arrival order (faulted ones too). */
  requests: Array<{ target: string; secretId: string; authorization: string }>
  /** Faults for the next requests, one each, in order. */
  faults: Fault[]
  /** Answers nothing until this many requests wait at once (then all of them): proves the reads run in parallel. */
  holdUntil: number
}

const REGION = 'eu-west-2'
const ACCOUNT = '123456789012'

/** The full ARN Secrets Manager gives a secret named `name` (a random six-character suffix, fixed here). */
export const secretArn = (name: string) => `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${name}-AbC123`

/**
 * Secrets Manager's GetSecretValue over HTTP, as the SDK speaks it: AWS JSON 1.1 (POST /, the
 * operation in X-Amz-Target, a JSON body), errors as `{"__type","message"}` with status 400 (500 for
 * the service's own failure, which the SDK retries).
 */
export async function startSecretsManager (t: Test): Promise<SecretsManagerStandIn> {
  const held: Array<() => void> = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const target = String(req.headers['x-amz-target'] ?? '')
      const { SecretId } = JSON.parse(body || '{}') as { SecretId?: string }
      standIn.requests.push({ target, secretId: String(SecretId), authorization: String(req.headers.authorization ?? '') })
      const fault = standIn.faults.shift()
      if (fault === 'hang') return
      if (fault === 'internal-error') return reply(res, 500, { __type: 'InternalServiceError', message: 'An error occurred on the server side.' })
      held.push(() => answer(req, target, String(SecretId), res))
      if (held.length >= standIn.holdUntil) for (const go of held.splice(0)) go()
    })
  })
  const answer = (req: IncomingMessage, target: string, SecretId: string, res: ServerResponse) => {
    if (target !== 'secretsmanager.GetSecretValue') return reply(res, 400, { __type: 'UnknownOperationException', message: `unknown operation ${target}` })
    if (req.headers['content-type'] !== 'application/x-amz-json-1.1') return reply(res, 400, { __type: 'SerializationException', message: 'expected application/x-amz-json-1.1' })
    const name = [...standIn.secrets.keys()].find((key) => key === SecretId || secretArn(key) === SecretId)
    if (name === undefined) return reply(res, 400, { __type: 'ResourceNotFoundException', message: 'Secrets Manager can\'t find the specified secret.' })
    const stored = standIn.secrets.get(name)!
    reply(res, 200, {
      ARN: secretArn(name),
      Name: name,
      VersionId: randomUUID(),
      ...('string' in stored ? { SecretString: stored.string } : { SecretBinary: stored.binary.toString('base64') }),
      VersionStages: ['AWSCURRENT'],
      CreatedDate: 1796543112.5
    })
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const standIn: SecretsManagerStandIn = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    secrets: new Map(),
    requests: [],
    faults: [],
    holdUntil: 1
  }
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return standIn
}

function reply (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID()
  })
  res.end(text)
}
