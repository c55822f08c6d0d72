import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { socketClient } from './client-address.js'

export interface ConnectionBudgetOptions {
  /** Open connections one client address may hold; 0 turns the cap off. */
  perClient: number
  /** All open connections; defaults to the descriptor limit less a reserve. */
  total?: number
  /** A connection that has sent nothing by then is closed (Node's headers timeout starts at the first byte). */
  firstByteTimeoutMs: number
}

/** The soft limit on open files, from the kernel's own account of this process (Linux only). */
export function descriptorLimit (): number | undefined {
  try {
    const line = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    return line ? Number(line[1]) : undefined
  } catch {
    return undefined
  }
}

/**
 * Descriptors kept back from clients: for Connect, Redis, the JWKS endpoint, logs, and the probes
 * that must still get an answer when clients take everything else.
 */
export function totalConnectionCap (limit: number | undefined): number | undefined {
  if (limit === undefined) return undefined
  return Math.max(16, limit - Math.max(64, Math.ceil(limit * 0.1)))
}

/**
 * Connections are what a slow client spends, not requests: without this one address could open
 * sockets until the process runs out of descriptors. A connection past its address's cap is closed
 * at once, before a byte of it is read; past the total, Node itself refuses it (maxConnections).
 */
async function connectionBudget (app: FastifyInstance, options: ConnectionBudgetOptions) {
  const total = options.total ?? totalConnectionCap(descriptorLimit())
  if (total !== undefined) app.server.maxConnections = total
  app.server.on('drop', () => app.metrics.connectionsRefused.inc({ reason: 'total' }))

  app.server.on('connection', (socket: Socket) => {
    const silent = setTimeout(() => { if (socket.bytesRead === 0) socket.destroy() }, options.firstByteTimeoutMs).unref()
    socket.once('close', () => clearTimeout(silent))
  })
  if (options.perClient <= 0) return

  const open = new Map<string, number>()
  app.server.on('connection', (socket: Socket) => {
    const { key } = socketClient(socket)
    if (key === 'unknown') return
    const count = open.get(key) ?? 0
    if (count >= options.perClient) {
      app.metrics.connectionsRefused.inc({ reason: 'per_client' })
      socket.destroy()
      return
    }
    open.set(key, count + 1)
    socket.once('close', () => {
      const left = (open.get(key) ?? 1) - 1
      if (left <= 0) open.delete(key)
      else open.set(key, left)
    })
  })
}

export default fp(connectionBudget, { name: 'connection-budget' })
