import { StartChatContactCommand, type ConnectClient } from '@aws-sdk/client-connect'
import { Overloaded, UpstreamFailed, type GatewayError } from '../errors.js'
import { mapConnectError } from './errors.js'
import { PACE_ATTEMPTS, paceAttempts } from './pacer.js'
import { buildStartChatInput, type ChatStartRequest, type ConnectTarget } from './input.js'

export interface StartedChat {
  contactId: string
  participantId: string
  participantToken: string
  continuedFromContactId?: string
}

/** Admission toward Connect's account-wide API quota (src/connect/pacer.ts); resolves when a call may go. */
export interface Pacer {
  /** Waits for a slot, or throws Overloaded at once when none can come before `deadline` (epoch ms). */
  acquire (deadline: number, signal: AbortSignal): Promise<void>
  /** Connect throttled us although we paced: slow down for a while. */
  onThrottled? (): void
  /** The SDK retries an attempt that failed with `errorName` (a throttled one: slow down). */
  onRetry? (errorName: string): void
  /** Inside the SDK, right before each HTTP attempt (1, 2, …): may wait, within the deadline. */
  beforeAttempt? (attempt: number, deadline: number, signal: AbortSignal): Promise<void>
  close? (): Promise<void>
}

export interface ChatStarterOptions {
  client: ConnectClient
  target: ConnectTarget
  /** Overall deadline for one start: pacing wait, attempts and backoff together. */
  timeoutMs: number
  maxConcurrency: number
  pacer?: Pacer
  /** Called once per start with how it ended; metrics hang here. */
  onOutcome?: (outcome: { ok: true; durationMs: number } | { ok: false; durationMs: number; error: GatewayError }) => void
}

/**
 * Starts chats on Connect: the only code that sends StartChatContact. Sheds load past the
 * concurrency cap instead of queueing, and holds every start to one deadline.
 */
export class ChatStarter {
  private inFlight = 0

  constructor (private readonly options: ChatStarterOptions) {}

  get activeCalls (): number { return this.inFlight }

  async start (request: ChatStartRequest, startedAt = Date.now()): Promise<StartedChat> {
    const { options } = this
    if (this.inFlight >= options.maxConcurrency) {
      const error = new Overloaded('Too many chats are starting right now; please try again shortly', { retryAfterSeconds: 1 })
      options.onOutcome?.({ ok: false, durationMs: 0, error })
      throw error
    }
    this.inFlight++
    const deadline = startedAt + options.timeoutMs
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(), Math.max(0, deadline - Date.now()))
    try {
      await options.pacer?.acquire(deadline, controller.signal)
      const command = new StartChatContactCommand(buildStartChatInput(request, options.target))
      // Retries spend Connect's quota too, and the SDK's own work can bunch paced calls: see pacer.ts.
      if (options.pacer?.beforeAttempt) command.middlewareStack.add(paceAttempts(options.pacer, deadline, controller.signal), PACE_ATTEMPTS)
      const output = await options.client.send(command, { abortSignal: controller.signal })
      if (!output.ContactId || !output.ParticipantId || !output.ParticipantToken) {
        throw new UpstreamFailed('The chat service gave an incomplete answer', {
          upstream: { errorName: 'IncompleteResponse', requestId: output.$metadata.requestId }
        })
      }
      options.onOutcome?.({ ok: true, durationMs: Date.now() - startedAt })
      return {
        contactId: output.ContactId,
        participantId: output.ParticipantId,
        participantToken: output.ParticipantToken,
        ...(output.ContinuedFromContactId ? { continuedFromContactId: output.ContinuedFromContactId } : {})
      }
    } catch (raw) {
      const error = mapConnectError(raw, { deadlineExpired: controller.signal.aborted, persistentChat: request.persistentChat !== undefined })
      if (error.code === 'UPSTREAM_THROTTLED') options.pacer?.onThrottled?.()
      options.onOutcome?.({ ok: false, durationMs: Date.now() - startedAt, error })
      throw error
    } finally {
      clearTimeout(timer)
      this.inFlight--
    }
  }
}
