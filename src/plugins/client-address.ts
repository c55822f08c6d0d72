import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Socket } from 'node:net'
import { clientKey, normalizeAddress } from '../client-address.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's address in one canonical form (after TRUST_PROXY); 'unknown' if there is none. */
    clientAddress: string
    /** What the caller is counted under: the address, or its IPv6 /64. */
    clientKey: string
  }
}

interface Client { address: string; key: string }
const UNKNOWN: Client = { address: 'unknown', key: 'unknown' }
const socketClients = new WeakMap<Socket, Client>()

/**
 * The peer of a connection, normalised once for its whole life: the connection budget counts it,
 * and every request on it starts from it. Taken at connection time, it survives the socket being
 * destroyed (a broken chunked body), when Node no longer reports the address.
 */
export function socketClient (socket: Socket): Client {
  let client = socketClients.get(socket)
  if (client === undefined) {
    const address = normalizeAddress(socket.remoteAddress)
    client = address === undefined ? UNKNOWN : { address, key: clientKey(address) }
    socketClients.set(socket, client)
  }
  return client
}

/**
 * Settles who the caller is once, first thing, so every later hook keys on the same value: the rate
 * limit, the Idempotency-Key binding and the request log. The socket's address is taken when the
 * connection opens: a request whose socket is already destroyed (a broken chunked body) still has one.
 */
async function clientAddressPlugin (app: FastifyInstance, { trustProxy }: { trustProxy: boolean | string[] }) {
  app.server.on('connection', socketClient)

  function resolve (request: FastifyRequest): Client {
    const own = socketClient(request.raw.socket)
    if (trustProxy === false) return own
    let forwarded: string | undefined
    // proxy-addr needs the live socket; a destroyed one (or a header it cannot read) means no answer.
    try { forwarded = normalizeAddress(request.ip) } catch { forwarded = undefined }
    return forwarded === undefined ? own : { address: forwarded, key: clientKey(forwarded) }
  }

  app.decorateRequest('clientAddress', '')
  app.decorateRequest('clientKey', '')
  // Callback-style hooks on the hot path: an async one costs a promise and a microtask per request.
  app.addHook('onRequest', (request, _reply, done) => {
    const { address, key } = resolve(request)
    request.clientAddress = address
    request.clientKey = key
    done()
  })
}

export default fp(clientAddressPlugin, { name: 'client-address' })
