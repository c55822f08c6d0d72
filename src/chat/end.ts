import type { Contacts } from '../connect/contacts.js'
import type { EndTokens } from '../trust/end-token.js'
import type { Widget } from '../widgets/index.js'
import type { ChatQuota } from './quota.js'

export interface ChatEndDeps {
  contacts: Contacts
  quota: ChatQuota
  endTokens: EndTokens
  onEnded?: (outcome: 'stopped' | 'already_ended') => void
}

/**
 * Ends the chat an end token names, on the widget that issued it: StopContact, then its seat is
 * free. Ending a chat that has ended already answers the same, so a page can send it on every exit.
 */
export async function endChat (deps: ChatEndDeps, token: string, widget: Widget): Promise<{ contactId: string; outcome: 'stopped' | 'already_ended' }> {
  const { contactId } = await deps.endTokens.verify(token, widget.named)
  const chat = { instanceId: widget.target.instanceId, contactId }
  const outcome = await deps.contacts.stop(chat)
  await deps.quota.ended(chat)
  deps.onEnded?.(outcome)
  return { contactId, outcome }
}
