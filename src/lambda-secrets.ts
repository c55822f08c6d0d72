// Lambda injects no secrets: SECRET_IDS names, per environment variable, the Secrets Manager secret
// holding its value, and the function reads them while an execution environment starts. The
// container path never uses this: ECS puts the values into the task's environment itself.
import { GetSecretValueCommand, SecretsManagerClient, type SecretsManagerClientConfig } from '@aws-sdk/client-secrets-manager'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { ConfigError } from './settings.js'

export interface SecretsOptions {
  /** Extra SDK settings (tests pass an endpoint and static credentials; AWS_ENDPOINT_URL_SECRETS_MANAGER works too). */
  overrides?: Partial<SecretsManagerClientConfig>
  /** Longest wait for all secrets, the SDK's retries included (default 5 s, half of Lambda's init phase). */
  timeoutMs?: number
}

const NAME = /^[A-Z][A-Z0-9_]*$/

/** SECRET_IDS as a map of variable name -> secret id or ARN; anything else is refused without echoing a value. */
export function parseSecretIds (text: string): Map<string, string> {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new ConfigError('SECRET_IDS: not JSON; expected an object of variable name -> secret id, e.g. {"RESUME_TOKEN_SECRET":"prod/chat/resume"}')
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`SECRET_IDS: expected an object of variable name -> secret id, not ${Array.isArray(parsed) ? 'an array' : parsed === null ? 'null' : `a ${typeof parsed}`}`)
  }
  const ids = new Map<string, string>()
  for (const [name, id] of Object.entries(parsed)) {
    if (!NAME.test(name)) throw new ConfigError(`SECRET_IDS: "${name.slice(0, 60)}" is not a variable name (upper case letters, digits and _, starting with a letter)`)
    if (typeof id !== 'string' || id.trim() === '') throw new ConfigError(`SECRET_IDS: ${name} must map to a non-empty secret id or ARN`)
    ids.set(name, id)
  }
  return ids
}

/** A secret id is not secret, but a long one is cut so one bad entry cannot flood the log line. */
const shown = (id: string) => id.length > 200 ? `${id.slice(0, 200)}…` : id

/**
 * `env` with every SECRET_IDS variable set from Secrets Manager (a new object; `env` is left as it
 * was), or `env` itself without SECRET_IDS. All secrets are read in parallel; a variable that is
 * also set directly is refused as ambiguous, and any failure names each variable and secret id that
 * failed, never a value.
 */
export async function withSecrets (env: Record<string, string | undefined>, options: SecretsOptions = {}): Promise<Record<string, string | undefined>> {
  if (env.SECRET_IDS === undefined || env.SECRET_IDS === '') return env
  const ids = parseSecretIds(env.SECRET_IDS)
  const ambiguous = [...ids.keys()].filter((name) => env[name] !== undefined && env[name] !== '')
  if (ambiguous.length > 0) {
    throw new ConfigError(`SECRET_IDS: ${ambiguous.join(', ')} ${ambiguous.length === 1 ? 'is' : 'are'} also set in the environment; set each either directly or through SECRET_IDS, not both`)
  }
  if (ids.size === 0) return env
  const client = new SecretsManagerClient({
    ...(env.AWS_REGION ? { region: env.AWS_REGION } : {}),
    // The SDK's standard retries (three attempts, backoff), each attempt bounded too.
    maxAttempts: 3,
    requestHandler: new NodeHttpHandler({ connectionTimeout: 1_000, requestTimeout: 2_000, throwOnRequestTimeout: true }),
    ...options.overrides
  })
  const timeoutMs = options.timeoutMs ?? 5_000
  const abortSignal = AbortSignal.timeout(timeoutMs)
  const entries = [...ids]
  try {
    const results = await Promise.allSettled(entries.map(async ([name, id]) => {
      const out = await client.send(new GetSecretValueCommand({ SecretId: id }), { abortSignal })
      if (out.SecretString === undefined) throw new Error('it holds no SecretString (a binary secret is not supported)')
      if (out.SecretString === '') throw new Error('its value is empty')
      return [name, out.SecretString] as const
    }))
    const failed = results.flatMap((result, i) => {
      if (result.status === 'fulfilled') return []
      const [name, id] = entries[i]!
      return [`${name} (secret ${shown(id)}): ${reason(result.reason, abortSignal.aborted ? timeoutMs : undefined)}`]
    })
    if (failed.length > 0) throw new ConfigError(`SECRET_IDS: could not read ${failed.join('; ')}`)
    return { ...env, ...Object.fromEntries(results.map((r) => (r as PromiseFulfilledResult<readonly [string, string]>).value)) }
  } finally {
    client.destroy()
  }
}

/** Why one read failed: the deadline, or the SDK's error name and message (a failed read carries no value). */
function reason (err: unknown, abortedAfterMs: number | undefined): string {
  const { name, message } = err as { name?: string; message?: string }
  if (abortedAfterMs !== undefined && (name === 'AbortError' || name === 'TimeoutError')) return `no answer within ${abortedAfterMs} ms`
  const text = String(message ?? err).slice(0, 300)
  return name && name !== 'Error' ? `${name}: ${text}` : text
}
