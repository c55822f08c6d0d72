// DescribeContact and StopContact as the simulator speaks them: enough of each for the gateway to
// learn whether a chat still lives and to end one, with Connect's own error types.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { randomUUID } from 'node:crypto'
import type { Clock } from './clock.js'
import type { SimulatedContact } from './contact.js'
import { checkAuthorization, isObject, MAX_BODY_BYTES, readBody, safeJsonParse, sendJson } from './start-chat-wire.js'

export const DESCRIBE_CONTACT = /^\/contacts\/([^/]+)\/([^/]+)$/
export const STOP_CONTACT = '/contact/stop'

/** What the operations need of the simulator: its contacts, its time, and ending one. */
export interface ContactHost {
  readonly contacts: Map<string, SimulatedContact>
  readonly clock: Clock
  endChat (contactId: string): void
  countOperation (name: 'described' | 'stopped'): void
}

const error = (res: ServerResponse, status: number, type: string, message: string) =>
  sendJson(res, randomUUID(), status, { Message: message }, { 'x-amzn-errortype': type })

/** Answers the request if it is one of the two operations; false when it is not ours. */
export async function handleContactOperation (host: ContactHost, req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
  const describe = req.method === 'GET' ? DESCRIBE_CONTACT.exec(path) : null
  const stop = req.method === 'POST' && path === STOP_CONTACT
  if (!describe && !stop) return false
  const authError = checkAuthorization(req.headers.authorization)
  if (authError) {
    error(res, authError.status, authError.type, authError.message)
    return true
  }
  if (describe) {
    host.countOperation('described')
    const contact = host.contacts.get(decodeURIComponent(describe[2]!))
    if (!contact) {
      error(res, 404, 'ResourceNotFoundException', 'Contact not found')
      return true
    }
    const ended = contact.endsAt <= host.clock.now()
    sendJson(res, randomUUID(), 200, {
      Contact: {
        Id: contact.contactId,
        InitialContactId: contact.initialContactId,
        ...(contact.continuedFromContactId ? { PreviousContactId: contact.continuedFromContactId } : {}),
        Channel: 'CHAT',
        InitiationMethod: 'API',
        InitiationTimestamp: contact.createdAt / 1000,
        // Connect sets it once the chat has ended, by either side or by its duration.
        ...(ended ? { DisconnectTimestamp: contact.endsAt / 1000 } : {})
      }
    })
    return true
  }
  host.countOperation('stopped')
  const body = await readBody(req, MAX_BODY_BYTES)
  const input = body.ok ? safeJsonParse(body.text) : undefined
  if (!isObject(input) || typeof input.ContactId !== 'string' || typeof input.InstanceId !== 'string') {
    error(res, 400, 'InvalidParameterException', 'ContactId and InstanceId are required')
    return true
  }
  const contact = host.contacts.get(input.ContactId)
  // Connect: "The contact with the specified ID is not active or does not exist."
  if (!contact || contact.endsAt <= host.clock.now()) {
    error(res, 410, 'ContactNotFoundException', 'The contact with the specified ID is not active or does not exist')
    return true
  }
  host.endChat(contact.contactId)
  sendJson(res, randomUUID(), 200, {})
  return true
}
