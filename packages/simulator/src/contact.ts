/** A chat the simulator started: what StartChatContact answered, and what the Participant Service needs of it. */
export interface SimulatedContact {
  contactId: string
  participantId: string
  participantToken: string
  initialContactId: string
  continuedFromContactId?: string
  /** RelatedContactId: the contact this one was linked to, and whose attributes it copied. */
  relatedContactId?: string
  /** The contact's attributes: a related contact's, then the request's own over them. */
  attributes: Record<string, string>
  createdAt: number
  endsAt: number
  input: Record<string, unknown>
}
