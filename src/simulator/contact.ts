/** A chat the simulator started: what StartChatContact answered, and what the Participant Service needs of it. */
export interface SimulatedContact {
  contactId: string
  participantId: string
  participantToken: string
  initialContactId: string
  continuedFromContactId?: string
  createdAt: number
  endsAt: number
  input: Record<string, unknown>
}
