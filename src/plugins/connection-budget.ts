import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { totalmem } from 'node:os'
import { Overloaded } from '../errors.js'
import { socketClient } from './client-address.js'
import { toErrorBody } from './error-handler.js'

export interface ConnectionBudgetOptions {
  /** Open connections one client address may hold; 0 turns the cap off. */
  perClient: number
  /** All open connections on this port, the probes' slots included; defaults to what descriptors and memory allow. */
  total?: number
  /** Descriptors another listener of this process may hold (the admin port): not given to this one. */
  reservedElsewhere?: number
  /** Idle keep-alive time while the budget has room. */
  keepAliveTimeoutMs: number
}

/** Connections only /health/* may use: a load balancer's probe still gets an answer when clients hold every other slot. */
export const PROBE_SLOTS = 16
/** A probe slot must carry its request head within this; an attacker cannot hold one for the full headers timeout. */
const PROBE_HEAD_MS = 1_000
/** Past this share of the clients' slots, idle keep-alive connections are closed after NEARLY_SPENT_KEEP_ALIVE_MS. */
const NEARLY_SPENT = 0.75
const NEARLY_SPENT_KEEP_ALIVE_MS = 2_000
/**
 * Memory one open connection may cost, with its parser, buffers and timers: an idle socket measured
 * about 9.5 KB; a connection with a request in flight more. Generous, so the estimate errs low.
 */
const BYTES_PER_CONNECTION = 16 * 1024
/** Share of the process's memory connections may take; the rest is for the heap, Connect's sockets and the runtime. */
const MEMORY_SHARE = 0.25

/** The soft limit on open files, from the kernel's own account of this process (Linux only). */
export function descriptorLimit (): number | undefined {
  try {
    const line = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    return line ? Number(line[1]) : undefined
  } catch {
    return undefined
  }
}

/** Memory this process may use: its container's limit (cgroup) when there is one, else the machine's. */
export function memoryLimit (): number {
  const constrained = process.constrainedMemory?.() ?? 0
  return constrained > 0 ? Math.min(constrained, totalmem()) : totalmem()
}

/**
 * The total cap of one port's connections: what the descriptors allow after a reserve for Connect,
 * Redis, the JWKS endpoint, logs and other listeners, and what the memory allows, whichever is lower.
 * Without the memory bound a large descriptor limit (65,535 on Fargate) outgrows a small task's memory.
 */
export function totalConnectionCap (descriptors: number | undefined, memoryBytes: number = memoryLimit(), reservedElsewhere = 0): number {
  const byMemory = Math.floor(memoryBytes * MEMORY_SHARE / BYTES_PER_CONNECTION)
  const byDescriptors = descriptors === undefined
    ? Infinity
    : descriptors - Math.max(64, Math.ceil(descriptors * 0.1)) - reservedElsewhere
  return Math.max(PROBE_SLOTS + 16, Math.min(byMemory, byDescriptors))
}

const isProbe = (url: string | undefined) => url === '/health/live' || url === '/health/ready'

/**
 * Connections are what a slow client spends, not requests: without this one address could open
 * sockets until the process runs out of descriptors. A connection past its address's cap is closed
 * at once, before a byte of it is read; past the total, Node itself refuses it (maxConnections).
 * The last PROBE_SLOTS of the total serve /health/* only, one request each, so probes get through
 * when clients hold everything else; and while the budget is nearly spent, idle keep-alive
 * connections are closed sooner, handing their slots back.
 */
async function connectionBudget (app: FastifyInstance, options: ConnectionBudgetOptions) {
  const total = options.total ?? totalConnectionCap(descriptorLimit(), memoryLimit(), options.reservedElsewhere)
  const forClients = total - PROBE_SLOTS
  const server = app.server
  server.maxConnections = total
  server.on('drop', () => app.metrics.connectionsRefused.inc({ reason: 'total' }))

  let open = 0
  const probeOnly = new WeakSet<Socket>()
  const keepAlive = () => {
    server.keepAliveTimeout = open >= forClients * NEARLY_SPENT ? NEARLY_SPENT_KEEP_ALIVE_MS : options.keepAliveTimeoutMs
  }
  server.on('connection', (socket: Socket) => {
    open++
    keepAlive()
    socket.once('close', () => { open--; keepAlive() })
    if (open <= forClients) return
    probeOnly.add(socket)
    const slow = setTimeout(() => { if (probeOnly.has(socket)) socket.destroy() }, PROBE_HEAD_MS).unref()
    socket.once('close', () => clearTimeout(slow))
  })
  // First of every onRequest hook: a request on a probe slot is answered before anything else runs.
  app.addHook('onRequest', (request, reply, done) => {
    const socket = request.raw.socket
    if (!probeOnly.has(socket)) { done(); return }
    probeOnly.delete(socket)
    reply.header('connection', 'close')
    if (isProbe(request.routeOptions.url)) { done(); return }
    app.metrics.connectionsRefused.inc({ reason: 'probe_slot' })
    const { body } = toErrorBody(new Overloaded('This replica has no connection to spare; please try again', { retryAfterSeconds: 5 }))
    reply.code(503).header('retry-after', '5').type('application/json; charset=utf-8').send(body)
  })
  if (options.perClient <= 0) return

  const perClient = new Map<string, number>()
  server.on('connection', (socket: Socket) => {
    const { key } = socketClient(socket)
    if (key === 'unknown') return
    const count = perClient.get(key) ?? 0
    if (count >= options.perClient) {
      app.metrics.connectionsRefused.inc({ reason: 'per_client' })
      socket.destroy()
      return
    }
    perClient.set(key, count + 1)
    socket.once('close', () => {
      const left = (perClient.get(key) ?? 1) - 1
      if (left <= 0) perClient.delete(key)
      else perClient.set(key, left)
    })
  })
}

export default fp(connectionBudget, { name: 'connection-budget', decorators: { fastify: ['metrics'] } })
