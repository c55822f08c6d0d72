/**
 * The Participant Service's WebSocket, as amazon-connect-chatjs speaks it: the client subscribes
 * with `{"topic":"aws/subscribe","content":{"topics":["aws/chat"]}}`, sends `aws/heartbeat` and
 * `aws/ping` every 10 s and reconnects when either goes unanswered; chat items arrive as
 * `{"topic":"aws/chat","contentType":"application/json","content":"<the item as JSON>"}`.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'

const CHAT_TOPIC = 'aws/chat'

/** One open WebSocket of one participant connection. */
export interface ChatSocket {
  readonly contactId: string
  readonly participantId: string
  /** True once the client subscribed to `aws/chat`: only then are items pushed to it. */
  subscribed: boolean
  readonly ws: WebSocket
}

export interface SocketHubEvents {
  /** The URL token of an upgrade request: whose connection it is, or undefined to refuse it. */
  resolve (token: string): { contactId: string; participantId: string } | undefined
  /** A socket subscribed to `aws/chat` (the first time, and again after every reconnect). */
  subscribed (socket: ChatSocket): void
}

export class SocketHub {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 128 * 1024 })
  private readonly sockets = new Set<ChatSocket>()
  /** Every socket ever accepted; tests count reconnects with it. */
  opened = 0

  constructor (private readonly events: SocketHubEvents) {}

  /** Takes over an HTTP upgrade for `path?token=…`; anything else is refused with 403/404. */
  handleUpgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://simulator')
    const token = url.searchParams.get('token') ?? ''
    const owner = token === '' ? undefined : this.events.resolve(token)
    if (!owner) {
      // Connect answers an expired or unknown URL before the upgrade; chatjs then fetches a new one.
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, owner.contactId, owner.participantId))
  }

  private accept (ws: WebSocket, contactId: string, participantId: string): void {
    const socket: ChatSocket = { contactId, participantId, subscribed: false, ws }
    this.sockets.add(socket)
    this.opened++
    ws.on('close', () => this.sockets.delete(socket))
    // A client that vanishes is noticed by its missing heartbeats; errors need no other handling.
    ws.on('error', () => ws.terminate())
    ws.on('message', (data, isBinary) => {
      if (isBinary) return
      this.onMessage(socket, data.toString())
    })
  }

  private onMessage (socket: ChatSocket, text: string): void {
    let message: { topic?: unknown; content?: { topics?: unknown } }
    try {
      message = JSON.parse(text) as typeof message
    } catch {
      return
    }
    switch (message.topic) {
      case 'aws/subscribe': {
        const topics = Array.isArray(message.content?.topics) ? message.content.topics : []
        const ok = topics.length > 0 && topics.every((topic) => topic === CHAT_TOPIC)
        send(socket.ws, { topic: 'aws/subscribe', content: { status: ok ? 'success' : 'failure', topics } })
        if (ok && !socket.subscribed) {
          socket.subscribed = true
          this.events.subscribed(socket)
        }
        return
      }
      case 'aws/heartbeat':
        send(socket.ws, { topic: 'aws/heartbeat' })
        return
      case 'aws/ping':
        send(socket.ws, { topic: 'aws/ping', statusCode: 200, statusContent: 'OK' })
        return
      default:
        // Chat clients never publish on the socket: messages go through SendMessage.
    }
  }

  /** Pushes an item to every subscribed socket of the contact; returns how many got it. */
  push (contactId: string, item: object): number {
    const frame = JSON.stringify({ topic: CHAT_TOPIC, contentType: 'application/json', content: JSON.stringify(item) })
    let delivered = 0
    for (const socket of this.sockets) {
      if (socket.contactId !== contactId || !socket.subscribed || socket.ws.readyState !== socket.ws.OPEN) continue
      socket.ws.send(frame)
      delivered++
    }
    return delivered
  }

  /** Open sockets, of one contact or all. */
  count (contactId?: string): number {
    let n = 0
    for (const socket of this.sockets) if (contactId === undefined || socket.contactId === contactId) n++
    return n
  }

  /** Cuts sockets without a closing handshake, as a network failure would (the client sees 1006). */
  drop (contactId?: string): number {
    let n = 0
    for (const socket of [...this.sockets]) {
      if (contactId !== undefined && socket.contactId !== contactId) continue
      this.sockets.delete(socket)
      socket.ws.terminate()
      n++
    }
    return n
  }

  close (): void {
    this.drop()
    this.wss.close()
  }
}

function send (ws: WebSocket, message: object): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message))
}
