import type { Test } from 'tap'
import { build, type Harness } from '../helper.js'
import { ALLOWED_ATTRIBUTES, type Expected } from './oracle.js'

// One app per property (building one per generated request would take minutes), and the checks
// every fuzz property shares: never a 5xx, Connect called only for what the contract accepts, no pollution.

export const FUZZ_ENV = {
  ALLOWED_ATTRIBUTES: ALLOWED_ATTRIBUTES.join(','),
  // The per-client limit would turn thousands of requests from one address into 429s.
  RATE_LIMIT_MAX: '1000000',
  // Likewise the per-client connection cap, for properties that send over many sockets at once.
  MAX_CONNECTIONS_PER_CLIENT: '0',
  CONNECT_MAX_CONCURRENCY: '10',
  CHAT_START_TIMEOUT_MS: '5000'
}

/** Seeds and run counts can be set from the environment to replay or extend a run. */
export const runs = (n: number) => Math.max(1, Math.round(n * Number(process.env.FUZZ_SCALE ?? 1)))
export const seedOptions = () => (process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {})

const prototypes = [Object.prototype, Array.prototype, Function.prototype, String.prototype]
const snapshot = () => prototypes.map((p) => Object.getOwnPropertyNames(p).sort().join(','))

export interface Fuzzer extends Harness {
  /** Connect calls since the last `calls()`; a start with no faults makes exactly one. */
  calls (): number
  /** Throws when any built-in prototype gained or lost a property since the app was built. */
  assertNoPollution (): void
}

export async function fuzzer (t: Test, env: Record<string, string> = {}): Promise<Fuzzer> {
  const harness = await build(t, { ...FUZZ_ENV, ...env })
  const before = snapshot()
  let seen = 0
  return {
    ...harness,
    calls () {
      const n = harness.sim.requests.length - seen
      seen = harness.sim.requests.length
      return n
    },
    assertNoPollution () {
      const now = snapshot()
      const canary = {} as Record<string, unknown>
      if (now.join('|') !== before.join('|') || canary.polluted !== undefined || canary.isAdmin !== undefined) {
        throw new Error('a built-in prototype was modified')
      }
    }
  }
}

/** What Connect received must be exactly what the oracle says the browser decided. */
export function checkUpstreamInput (input: Record<string, unknown>, expected: Expected, config: { instanceId: string; contactFlowId: string }): string | undefined {
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)
  if (input.InstanceId !== config.instanceId || input.ContactFlowId !== config.contactFlowId) return 'instance or flow not from configuration'
  if (!same(input.ParticipantDetails, { DisplayName: expected.DisplayName })) return 'DisplayName'
  for (const key of ['Attributes', 'InitialMessage', 'SupportedMessagingContentTypes', 'ChatDurationInMinutes', 'ParticipantConfiguration'] as const) {
    if (!same(input[key], expected[key])) return key
  }
  const allowed = new Set(['InstanceId', 'ContactFlowId', 'ParticipantDetails', 'Attributes', 'InitialMessage', 'SupportedMessagingContentTypes', 'ChatDurationInMinutes', 'ParticipantConfiguration', 'ClientToken'])
  const extra = Object.keys(input).filter((k) => !allowed.has(k))
  return extra.length > 0 ? `unexpected fields ${extra.join(',')}` : undefined
}
