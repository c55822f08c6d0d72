import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

export interface HardenedServerOptions {
  /** Time a client has for its headers and body (REQUEST_TIMEOUT_MS). */
  requestTimeoutMs: number
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number
  /** Open connections at most; past it Node closes new ones on arrival. */
  maxConnections?: number
}

/** Headers must arrive within a few seconds, whatever the time allowed for the body. */
export const headersTimeoutMs = (requestTimeoutMs: number) => Math.min(5_000, requestTimeoutMs)

/**
 * An HTTP server a slow client cannot hold: headers within a few seconds and the whole request within
 * `requestTimeoutMs`, checked every second (Node checks every 30 s by default, which a drip-fed body
 * outlives), and a connection that sends nothing at all closed as soon (Node's headers timeout only
 * starts at the first byte). Both the public port and the admin port are built from it.
 */
export function hardenedServer (handler: (req: IncomingMessage, res: ServerResponse) => void, options: HardenedServerOptions): Server {
  const headersMs = headersTimeoutMs(options.requestTimeoutMs)
  const server = createServer({
    headersTimeout: headersMs,
    requestTimeout: options.requestTimeoutMs,
    connectionsCheckingInterval: 1_000
  }, handler)
  server.keepAliveTimeout = options.keepAliveTimeoutMs
  if (options.maxConnections !== undefined) server.maxConnections = options.maxConnections
  server.on('connection', (socket: Socket) => {
    const silent = setTimeout(() => { if (socket.bytesRead === 0) socket.destroy() }, headersMs).unref()
    socket.once('close', () => clearTimeout(silent))
  })
  return server
}
