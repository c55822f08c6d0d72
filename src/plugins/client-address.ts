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

/**
 * Settles who the caller is once, first thing, so every later hook keys on the same value: the rate
 * limit, the Idempotency-Key binding and the request log. The socket's address is taken when the
 * connection opens: a request whose socket is already destroyed (a broken chunked body) still has one.
 */
async function clientAddressPlugin (app: FastifyInstance, { trustProxy }: { trustProxy: boolean | string[] }) {
  const socketAddresses = new WeakMap<Socket, string>()
  app.server.on('connection', (socket: Socket) => {
    const address = normalizeAddress(socket.remoteAddress)
    if (address) socketAddresses.set(socket, address)
  })

  function resolve (request: FastifyRequest): string {
    const socket = request.raw.socket
    const own = socketAddresses.get(socket) ?? normalizeAddress(socket.remoteAddress)
    if (trustProxy === false) return own ?? 'unknown'
    let forwarded: string | undefined
    // proxy-addr needs the live socket; a destroyed one (or a header it cannot read) means no answer.
    try { forwarded = request.ip } catch { forwarded = undefined }
    return normalizeAddress(forwarded) ?? own ?? 'unknown'
  }

  app.decorateRequest('clientAddress', '')
  app.decorateRequest('clientKey', '')
  // Callback-style hooks on the hot path: an async one costs a promise and a microtask per request.
  app.addHook('onRequest', (request, _reply, done) => {
    request.clientAddress = resolve(request)
    request.clientKey = request.clientAddress === 'unknown' ? 'unknown' : clientKey(request.clientAddress)
    done()
  })
}

export default fp(clientAddressPlugin, { name: 'client-address' })
