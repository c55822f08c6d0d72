/**
 * The simulated agent: it joins a moment after the customer connects, greets them by name, shows
 * typing before every answer and answers from a tiny script: "help" lists what it understands,
 * "bye" ends the chat, anything else is echoed back, in the content type it came in (markdown
 * stays markdown, as an agent's reply would be with rich messaging on).
 */

export type MessageType = 'text/plain' | 'text/markdown'

export interface AgentOptions {
  /** Shown as the agent's DisplayName; default "Sam (simulated agent)". */
  name?: string
  /** Time from the customer's connection to the agent joining; default 600 ms. */
  joinDelayMs?: number
  /** How long the agent "types" before each answer; default 900 ms. */
  typingMs?: number
}

/** What the agent can do in a chat; the Participant simulator carries it out. */
export interface AgentActions {
  join (contactId: string, agentName: string): void
  typing (contactId: string): void
  say (contactId: string, text: string, contentType: MessageType): void
  /** Leaves and ends the chat. */
  end (contactId: string): void
  /** False once the chat ended: the agent then stops answering. */
  isActive (contactId: string): boolean
  /** A delay the simulator cancels when it closes. */
  sleep (ms: number): Promise<void>
}

export interface ChatOpening {
  contactId: string
  customerName: string
  /** The chat continues an earlier one (persistent chat). */
  resumed: boolean
  /** The InitialMessage of StartChatContact, answered right after the greeting. */
  initialMessage?: string
}

const BYE = /\b(bye|goodbye)\b/i
const HELP = /\bhelp\b/i

/** The answer to one customer message, and whether the agent then ends the chat. */
export function answer (text: string, customerName: string, contentType: MessageType = 'text/plain'): { text: string; end: boolean } {
  if (BYE.test(text)) return { text: `Thanks for chatting, ${customerName}. Goodbye!`, end: true }
  if (HELP.test(text)) {
    const word = (w: string) => (contentType === 'text/markdown' ? `**${w}**` : `"${w}"`)
    return { text: `I understand ${word('help')} and ${word('bye')} (that one ends the chat). Anything else, I repeat back to you.`, end: false }
  }
  return { text: `You said: ${text}`, end: false }
}

export class ScriptedAgent {
  readonly name: string
  private readonly joinDelayMs: number
  private readonly typingMs: number
  /** Per chat, the answers still to give, in order: two quick messages get two ordered answers. */
  private readonly queues = new Map<string, Promise<void>>()
  private readonly names = new Map<string, string>()

  constructor (private readonly actions: AgentActions, options: AgentOptions = {}) {
    this.name = options.name ?? 'Sam (simulated agent)'
    this.joinDelayMs = options.joinDelayMs ?? 600
    this.typingMs = options.typingMs ?? 900
  }

  customerConnected (chat: ChatOpening): void {
    this.names.set(chat.contactId, chat.customerName)
    this.enqueue(chat.contactId, async () => {
      await this.actions.sleep(this.joinDelayMs)
      if (!this.actions.isActive(chat.contactId)) return
      this.actions.join(chat.contactId, this.name)
      const greeting = chat.resumed
        ? `Welcome back, ${chat.customerName}! I can see our earlier conversation above. How can I help?`
        : `Hi ${chat.customerName}, I'm ${this.name}. How can I help? (Say "help" to see what I understand.)`
      await this.reply(chat.contactId, greeting)
    })
    if (chat.initialMessage !== undefined) this.customerMessage(chat.contactId, chat.initialMessage)
  }

  customerMessage (contactId: string, text: string, contentType: MessageType = 'text/plain'): void {
    const { text: reply, end } = answer(text, this.names.get(contactId) ?? 'there', contentType)
    this.enqueue(contactId, async () => {
      await this.reply(contactId, reply, contentType)
      if (end && this.actions.isActive(contactId)) this.actions.end(contactId)
    })
  }

  forget (contactId: string): void {
    this.queues.delete(contactId)
    this.names.delete(contactId)
  }

  reset (): void {
    this.queues.clear()
    this.names.clear()
  }

  private async reply (contactId: string, text: string, contentType: MessageType = 'text/plain'): Promise<void> {
    if (!this.actions.isActive(contactId)) return
    this.actions.typing(contactId)
    await this.actions.sleep(this.typingMs)
    if (this.actions.isActive(contactId)) this.actions.say(contactId, text, contentType)
  }

  private enqueue (contactId: string, step: () => Promise<void>): void {
    const previous = this.queues.get(contactId) ?? Promise.resolve()
    // A failed step (the simulator closing mid-sleep) must not stop later answers or leak a rejection.
    const next = previous.then(step).catch(() => undefined)
    this.queues.set(contactId, next)
  }
}
