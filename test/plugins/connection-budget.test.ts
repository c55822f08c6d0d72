import { request } from 'node:http'
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { PROBE_SLOTS, totalConnectionCap } from '../../src/plugins/connection-budget.js'
import { build, listenLocal, until } from '../helper.js'

// Probes must get through when clients hold every connection the budget allows, and the budget
// must fit the process's memory as well as its descriptors.

const MiB = 1024 * 1024

t.test('the total cap is bounded by memory as well as descriptors, and keeps the admin port\'s share back', async (t) => {
  // Fargate: 65,535 descriptors in a 512 MiB task. At ~9.5 KB an idle socket, descriptors alone allowed ~560 MB.
  const fargate = totalConnectionCap(65_535, 512 * MiB)
  t.ok(fargate * 16 * 1024 <= 512 * MiB / 4, `${fargate} connections fit a quarter of 512 MiB at 16 KiB each`)
  t.ok(fargate >= 4_000, 'and still thousands of them')
  t.equal(totalConnectionCap(1_024, 64 * 1024 * MiB), 1_024 - 103, 'descriptors decide when memory is plentiful')
  t.equal(totalConnectionCap(1_024, 64 * 1024 * MiB, 16), 1_024 - 103 - 16, 'the admin port\'s connections come out of the same descriptors')
  t.equal(totalConnectionCap(undefined, 512 * MiB), fargate, 'memory alone when the descriptor limit is unknown')
  t.ok(totalConnectionCap(100, 8 * MiB) > PROBE_SLOTS, 'never smaller than the probes\' own slots')
})

/** A chat start whose body never arrives: held until REQUEST_TIMEOUT_MS (60 s here). */
function slowBody (port: number): Socket {
  const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' })
  s.on('error', () => {})
  s.once('connect', () => s.write('POST /chat/start HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 15000\r\n\r\n{'))
  return s
}

function get (port: number, path: string, from: string, method = 'GET'): Promise<{ status: number; connection?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, localAddress: from, agent: false }, (res) => {
      res.resume().on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('every client slot held by idle connections: /health/live and /health/ready still get 200 on the probe slots; anything else there 503', async (t) => {
  const total = PROBE_SLOTS + 24
  const { app } = await build(t, { MAX_CONNECTIONS_PER_CLIENT: '0', REQUEST_TIMEOUT_MS: '60000' }, { deps: { maxConnections: total } })
  const port = await listenLocal(app)
  const held: Socket[] = []
  t.teardown(() => { for (const s of held) s.destroy() })
  // Fifty addresses' worth of slow connections, in this test from one.
  for (let i = 0; i < total - PROBE_SLOTS; i++) held.push(slowBody(port))
  const open = () => new Promise<number>((resolve) => app.server.getConnections((_e, n) => resolve(n)))
  await until('the client slots to fill', async () => await open() === total - PROBE_SLOTS, 10_000)

  for (const path of ['/health/live', '/health/ready']) {
    const res = await get(port, path, '127.0.0.3')
    t.equal(res.status, 200, `${path} gets through (it was reset)`)
    t.equal(res.connection, 'close', 'and hands its slot back')
  }
  const chat = await get(port, '/chat/start', '127.0.0.3', 'POST')
  t.equal(chat.status, 503, 'a chat start on a probe slot is refused in our shape, not left hanging')
  const metrics = await app.inject('/metrics')
  t.match(metrics.body, /ccg_connections_refused_total\{reason="probe_slot"\} 1/)
  t.equal(held.filter((s) => s.destroyed).length, 0, 'the held connections were not touched')
})

t.test('nearly spent: idle keep-alive connections are closed after 2 s instead of 72 s', async (t) => {
  const total = PROBE_SLOTS + 20
  const { app } = await build(t, { MAX_CONNECTIONS_PER_CLIENT: '0', REQUEST_TIMEOUT_MS: '60000' }, { deps: { maxConnections: total } })
  const port = await listenLocal(app)
  t.equal(app.server.keepAliveTimeout, 72_000)
  const held: Socket[] = []
  t.teardown(() => { for (const s of held) s.destroy() })
  for (let i = 0; i < 16; i++) held.push(slowBody(port))
  await until('the budget to be nearly spent', () => app.server.keepAliveTimeout === 2_000, 10_000)
  // A keep-alive client that goes idle after its answer is now let go soon.
  const idle = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.3' })
  idle.on('error', () => {})
  t.teardown(() => idle.destroy())
  let answer = ''
  idle.setEncoding('utf8').on('data', (d: string) => { answer += d })
  idle.write('GET /health/live HTTP/1.1\r\nHost: gw\r\n\r\n')
  await new Promise<void>((resolve) => idle.once('close', () => resolve()))
  t.match(answer, /^HTTP\/1\.1 200/)
  t.match(answer, /Keep-Alive: timeout=2/i, 'the server closed it after the shorter keep-alive it announced')

  for (const s of held) s.destroy()
  await until('the budget to have room again', () => app.server.keepAliveTimeout === 72_000, 10_000)
  t.pass('and back to 72 s when it has room')
})
