import { StartChatContactCommand, type ConnectClient, type ServiceInputTypes, type ServiceOutputTypes } from '@aws-sdk/client-connect'
import type { AbsoluteLocation, FinalizeRequestHandlerOptions, FinalizeRequestMiddleware } from '@smithy/types'
import { systemClock, type Clock } from '../clock.js'
import { CallerLeft, Overloaded, UpstreamFailed, type GatewayError } from '../errors.js'
import { sendWith } from './client.js'
import { mapConnectError } from './errors.js'
import { buildStartChatInput, type ChatStartRequest, type ConnectTarget } from './input.js'

export interface StartedChat {
  contactId: string
  participantId: string
  participantToken: string
  continuedFromContactId?: string
}

/**
 * The starter's pacing port: admission toward Connect's account-wide API quota (implemented by
 * src/connect/pacer.ts); resolves when a call may go.
 */
export interface Pacer {
  /** Waits for a slot, or throws Overloaded at once when none can come before `deadline` (epoch ms). */
  acquire (deadline: number, signal: AbortSignal): Promise<void>
  /** Connect throttled us although we paced: slow down for a while. */
  onThrottled? (): void
  /** Inside the SDK, right before each HTTP attempt (1, 2, …): may wait, within the deadline. */
  beforeAttempt? (attempt: number, deadline: number, signal: AbortSignal): Promise<void>
  /** Told how each attempt ended: undefined when Connect accepted it, else the error's name. */
  afterAttempt? (errorName: string | undefined): void
  close? (): Promise<void>
}

export interface ChatStarterOptions {
  client: ConnectClient
  /** Overall deadline for one start: pacing wait, attempts and backoff together. */
  timeoutMs: number
  maxConcurrency: number
  pacer?: Pacer
  /** Called once per start with how it ended; metrics hang here. */
  onOutcome?: (outcome: ({ ok: true; durationMs: number } | { ok: false; durationMs: number; error: GatewayError }) & { widget?: string }) => void
  /** The caller left at `stage`: what their start was doing when they went. */
  onAbandoned?: (stage: AbandonStage) => void
  /** The deadline's time (the system clock by default). */
  clock?: Clock
}

/**
 * Where a start was when its caller left. `waiting`: for a pacing slot or a retry's backoff, so it
 * ends there and Connect is not called again; `on_the_wire`: an attempt was already sent, it is let
 * finish (aborting it would not take back a chat Connect may already have opened) but not retried.
 */
export type AbandonStage = 'waiting' | 'on_the_wire'

/**
 * Starts chats on Connect: the only code that sends StartChatContact. Sheds load past the
 * concurrency cap instead of queueing, and holds every start to one deadline.
 */
export class ChatStarter {
  private inFlight = 0
  private readonly clock: Clock

  constructor (private readonly options: ChatStarterOptions) {
    this.clock = options.clock ?? systemClock
  }

  get activeCalls (): number { return this.inFlight }

  /**
   * Starts `request` on `target` (each widget has its own instance and flow; the cap, the deadline
   * and pacing are shared). `caller` aborts when the caller goes away (their connection closed).
   */
  async start (request: ChatStartRequest, target: ConnectTarget, startedAt = this.clock.now(), caller?: AbortSignal): Promise<StartedChat> {
    const { options } = this
    const { widget } = target
    if (this.inFlight >= options.maxConcurrency) {
      const error = new Overloaded('Too many chats are starting right now; please try again shortly', { retryAfterSeconds: 1 })
      options.onOutcome?.({ ok: false, durationMs: 0, error, widget })
      throw error
    }
    this.inFlight++
    let counted = true
    // A caller who leaves gives their slot back at once, even while their last attempt finishes:
    // the cap is there for callers who are waiting, not for answers nobody will read.
    const release = () => { if (counted) { counted = false; this.inFlight-- } }
    const deadline = startedAt + options.timeoutMs
    const controller = new AbortController()
    const timer = this.clock.setTimeout(() => controller.abort(), Math.max(0, deadline - this.clock.now()))
    let onTheWire = false
    let left = false
    const leave = () => {
      left = true
      options.onAbandoned?.(onTheWire ? 'on_the_wire' : 'waiting')
      release()
      if (!onTheWire) controller.abort()
    }
    if (caller?.aborted) leave()
    else caller?.addEventListener('abort', leave, { once: true })
    try {
      await options.pacer?.acquire(deadline, controller.signal)
      const command = new StartChatContactCommand(buildStartChatInput(request, target))
      const watch = watchAttempts<ServiceInputTypes, ServiceOutputTypes>({
        sending: () => { onTheWire = true },
        // A caller who left during a failed attempt gets no retry; a successful one is answered.
        done: (failed) => { onTheWire = false; if (left && failed) controller.abort() }
      })
      // Retries spend Connect's quota too, and the SDK's own work can bunch paced calls: see pacer.ts.
      const pace = options.pacer?.beforeAttempt ? paceAttempts<ServiceInputTypes, ServiceOutputTypes>(options.pacer, deadline, controller.signal) : undefined
      const output = await sendWith(options.client, command, {
        signal: controller.signal,
        middleware: pace ? (next, context) => watch(pace(next, context), context) : watch
      })
      if (!output.ContactId || !output.ParticipantId || !output.ParticipantToken) {
        throw new UpstreamFailed('The chat service gave an incomplete answer', {
          upstream: { errorName: 'IncompleteResponse', requestId: output.$metadata.requestId }
        })
      }
      options.onOutcome?.({ ok: true, durationMs: this.clock.now() - startedAt, widget })
      return {
        contactId: output.ContactId,
        participantId: output.ParticipantId,
        participantToken: output.ParticipantToken,
        ...(output.ContinuedFromContactId ? { continuedFromContactId: output.ContinuedFromContactId } : {})
      }
    } catch (raw) {
      const error = left
        ? new CallerLeft('The caller left before the chat started')
        : mapConnectError(raw, { deadlineExpired: controller.signal.aborted, persistentChat: request.persistentChat !== undefined })
      if (error.code === 'UPSTREAM_THROTTLED') options.pacer?.onThrottled?.()
      options.onOutcome?.({ ok: false, durationMs: this.clock.now() - startedAt, error, widget })
      throw error
    } finally {
      this.clock.clearTimeout(timer)
      caller?.removeEventListener('abort', leave)
      release()
    }
  }
}

/** Marks the span in which one HTTP attempt is on the wire, inside the SDK's retry loop. */
function watchAttempts<Input extends object, Output extends object> (hooks: { sending (): void; done (failed: boolean): void }): FinalizeRequestMiddleware<Input, Output> {
  return (next) => async (args) => {
    hooks.sending()
    let failed = true
    try {
      const result = await next(args)
      failed = false
      return result
    } finally {
      hooks.done(failed)
    }
  }
}

export const PACE_ATTEMPTS: FinalizeRequestHandlerOptions & AbsoluteLocation = {
  step: 'finalizeRequest', priority: 'low', name: 'paceAttempts'
}

/**
 * SDK middleware for one StartChatContact command: inside the SDK's retry loop and after signing,
 * so it runs once per HTTP attempt just before it is sent. Unpaced retries would land on a bucket
 * Connect just said was empty, be throttled again, and crowd out the calls paced behind them.
 */
export function paceAttempts<Input extends object, Output extends object> (pacer: Pacer, deadline: number, signal: AbortSignal): FinalizeRequestMiddleware<Input, Output> {
  let attempt = 0
  return (next) => async (args) => {
    await pacer.beforeAttempt?.(++attempt, deadline, signal)
    try {
      const result = await next(args)
      pacer.afterAttempt?.(undefined)
      return result
    } catch (error) {
      const name = (error as { name?: unknown } | undefined)?.name
      pacer.afterAttempt?.(name === undefined ? 'Unknown' : String(name))
      throw error
    }
  }
}
