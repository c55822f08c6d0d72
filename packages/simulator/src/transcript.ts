/**
 * Items of a simulated chat and GetTranscript's paging over them, as the Participant Service
 * documents it: a page of at most MaxResults items (default 10), scanned BACKWARD from the most
 * recent item unless a StartPosition is given (then FORWARD from it), each page sorted by SortOrder
 * (default DESCENDING), and an opaque NextToken that continues the same scan.
 */
import { Buffer } from 'node:buffer'

export type ParticipantRole = 'CUSTOMER' | 'AGENT' | 'SYSTEM'
export type ItemType = 'MESSAGE' | 'EVENT' | 'MESSAGE_METADATA'

export interface Receipt {
  DeliveredTimestamp?: string
  ReadTimestamp?: string
  RecipientParticipantId: string
}

/** One transcript item, with the fields chatjs reads from the WebSocket and GetTranscript. */
export interface ChatItem {
  AbsoluteTime: string
  Content?: string
  ContentType: string
  Id: string
  Type: ItemType
  ParticipantId?: string
  DisplayName?: string
  ParticipantRole?: ParticipantRole
  ContactId: string
  InitialContactId: string
  MessageMetadata?: { MessageId: string; Receipts?: Receipt[] }
}

export interface TranscriptQuery {
  MaxResults?: number
  NextToken?: string
  ScanDirection?: 'FORWARD' | 'BACKWARD'
  SortOrder?: 'ASCENDING' | 'DESCENDING'
  StartPosition?: { Id?: string; AbsoluteTime?: string; MostRecent?: number }
}

export interface TranscriptPage {
  items: ChatItem[]
  nextToken?: string
}

export class TranscriptQueryError extends Error {}

interface Cursor {
  /** Scan direction the token was issued for; a token is only valid for the same direction. */
  d: 'FORWARD' | 'BACKWARD'
  /** Id of the last item returned: the next page starts just past it. */
  after: string
  /** Bound to one chat, so a token from another chat is refused rather than misread. */
  c: string
}

function encodeCursor (cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url')
}

function decodeCursor (token: string): Cursor | undefined {
  try {
    const value = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Partial<Cursor>
    if ((value.d === 'FORWARD' || value.d === 'BACKWARD') && typeof value.after === 'string' && typeof value.c === 'string') {
      return { d: value.d, after: value.after, c: value.c }
    }
  } catch { /* not ours */ }
  return undefined
}

/** Index of the first item to return, scanning `direction` over `items` (oldest first). */
function startIndex (items: ChatItem[], query: TranscriptQuery, direction: 'FORWARD' | 'BACKWARD'): number {
  const position = query.StartPosition
  if (position?.Id !== undefined) {
    const index = items.findIndex((item) => item.Id === position.Id)
    if (index < 0) throw new TranscriptQueryError('StartPosition.Id is not an item of this transcript')
    return index
  }
  if (position?.AbsoluteTime !== undefined) {
    const time = Date.parse(position.AbsoluteTime)
    if (Number.isNaN(time)) throw new TranscriptQueryError('StartPosition.AbsoluteTime must be an ISO 8601 time')
    if (direction === 'FORWARD') {
      const index = items.findIndex((item) => Date.parse(item.AbsoluteTime) >= time)
      return index < 0 ? items.length : index
    }
    let index = -1
    items.forEach((item, i) => { if (Date.parse(item.AbsoluteTime) <= time) index = i })
    return index
  }
  if (position?.MostRecent !== undefined) {
    // The MostRecent-th newest item; a larger number than there are items starts at the oldest.
    return direction === 'FORWARD' ? Math.max(0, items.length - position.MostRecent) : items.length - 1
  }
  return direction === 'FORWARD' ? 0 : items.length - 1
}

/** One page of `items` (oldest first) for `query`; `chatKey` binds NextTokens to this chat. */
export function pageTranscript (items: ChatItem[], query: TranscriptQuery, chatKey: string): TranscriptPage {
  const hasStart = query.StartPosition !== undefined &&
    (query.StartPosition.Id !== undefined || query.StartPosition.AbsoluteTime !== undefined || query.StartPosition.MostRecent !== undefined)
  const direction = query.ScanDirection ?? (hasStart ? 'FORWARD' : 'BACKWARD')
  const max = query.MaxResults ?? 10
  let from: number
  if (query.NextToken !== undefined) {
    const cursor = decodeCursor(query.NextToken)
    if (!cursor || cursor.c !== chatKey) throw new TranscriptQueryError('NextToken is not valid')
    if (cursor.d !== direction) throw new TranscriptQueryError('NextToken was issued for the other ScanDirection')
    const index = items.findIndex((item) => item.Id === cursor.after)
    if (index < 0) throw new TranscriptQueryError('NextToken is not valid')
    from = direction === 'FORWARD' ? index + 1 : index - 1
  } else {
    from = startIndex(items, query, direction)
  }

  const page: ChatItem[] = []
  let i = from
  while (page.length < max && i >= 0 && i < items.length) {
    page.push(items[i] as ChatItem)
    i += direction === 'FORWARD' ? 1 : -1
  }
  const more = i >= 0 && i < items.length && page.length > 0
  const last = page.at(-1)
  // The page is in scan order; SortOrder decides what the caller sees.
  const ascending = direction === 'FORWARD' ? page : [...page].reverse()
  const sorted = (query.SortOrder ?? 'DESCENDING') === 'ASCENDING' ? ascending : [...ascending].reverse()
  const result: TranscriptPage = { items: sorted }
  if (more && last) result.nextToken = encodeCursor({ d: direction, after: last.Id, c: chatKey })
  return result
}
