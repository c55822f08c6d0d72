import { DescribeContactCommand, StopContactCommand, type ConnectClient } from '@aws-sdk/client-connect'
import { mapConnectError } from './errors.js'

/** A contact on an instance: what DescribeContact and StopContact need. */
export interface ContactRef { instanceId: string; contactId: string }

// Connect answers these for a contact that is gone or already disconnected: for us, it has ended.
const ENDED = new Set(['ContactNotFoundException', 'ResourceNotFoundException'])

/**
 * The two contact calls besides StartChatContact: asking whether a chat still lives, and ending one.
 * Same client as the starts (one per process), each call bounded by `timeoutMs`.
 */
export class Contacts {
  constructor (private readonly client: ConnectClient, private readonly timeoutMs: number) {}

  /** True when Connect says the chat has ended (DisconnectTimestamp set, or the contact is gone). Throws when Connect cannot say. */
  async hasEnded (contact: ContactRef): Promise<boolean> {
    try {
      const out = await this.client.send(new DescribeContactCommand({ InstanceId: contact.instanceId, ContactId: contact.contactId }),
        { abortSignal: AbortSignal.timeout(this.timeoutMs) })
      return out.Contact?.DisconnectTimestamp !== undefined
    } catch (err) {
      if (ENDED.has((err as { name?: string })?.name ?? '')) return true
      throw mapConnectError(err, { deadlineExpired: false, persistentChat: false })
    }
  }

  /** Ends the chat for everyone in it; a chat that already ended is not an error. Throws our error kinds otherwise. */
  async stop (contact: ContactRef): Promise<'stopped' | 'already_ended'> {
    try {
      await this.client.send(new StopContactCommand({ InstanceId: contact.instanceId, ContactId: contact.contactId }),
        { abortSignal: AbortSignal.timeout(this.timeoutMs) })
      return 'stopped'
    } catch (err) {
      const name = (err as { name?: string })?.name ?? ''
      if (ENDED.has(name)) return 'already_ended'
      throw mapConnectError(err, { deadlineExpired: false, persistentChat: false })
    }
  }
}
