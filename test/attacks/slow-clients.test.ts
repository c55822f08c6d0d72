import { readdirSync, readFileSync } from 'node:fs'
import { request } from 'node:http'
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { until } from '../helper.js'
import { simulatedConnect, start } from '../service-process.js'

// One client must not take a replica down by holding connections: a service in its own process
// under `ulimit -n 1024`, an attacker at 127.0.0.2 holding 1,100 slow connections, a customer at
// 127.0.0.3 who must still be served.

const ATTACKER = '127.0.0.2'
const CUSTOMER = '127.0.0.3'
const SOCKETS = 1_100
const SLOW_HEAD = 'POST /chat/start HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 15000\r\n\r\n{'

const openFiles = (pid: number) => readdirSync(`/proc/${pid}/fd`).length
const rssBytes = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024

interface Attack { sockets: Socket[]; closedByServer: () => number; stop: () => void }

/** Opens `count` connections from `from`, each sending the head of a 15 KB body, then a byte every 500 ms. */
async function slowAttack (port: number, from: string, count: number, head: string): Promise<Attack> {
  const sockets: Socket[] = []
  let closed = 0
  let stopped = false
  for (let i = 0; i < count; i++) {
    const socket = connect({ port, host: '127.0.0.1', localAddress: from })
    socket.on('error', () => {})
    socket.once('close', () => { if (!stopped) closed++ })
    socket.once('connect', () => socket.write(head))
    sockets.push(socket)
    // Small batches, so the listen backlog is not what refuses them.
    if (i % 50 === 49) await sleep(10)
  }
  const drip = setInterval(() => { for (const s of sockets) if (!s.destroyed && s.writable) s.write(' ') }, 500)
  return {
    sockets,
    closedByServer: () => closed,
    stop: () => { stopped = true; clearInterval(drip); for (const s of sockets) s.destroy() }
  }
}

/** A request from a chosen source address, on a connection of its own. */
function call (port: number, from: string, method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, localAddress: from, agent: false, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (c: string) => { text += c }).on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

const chat = JSON.stringify({ ParticipantDetails: { DisplayName: 'Real Customer' } })
const settings = { REQUEST_TIMEOUT_MS: '3000', RATE_LIMIT_MAX: '100000', MAX_OPEN_CHATS_PER_CALLER: '100000' }
/** The settings above, toward a Connect simulator of the test's own. */
const env = async (t: Test) => ({ ...(await simulatedConnect(t)).env, ...settings })

t.test('1,100 slow connections from one address under ulimit -n 1024: the process stays up and serves another address', async (t) => {
  const server = start(t, await env(t), { maxOpenFiles: 1024 })
  const port = Number(new URL(await server.listening()).port)
  const pid = server.child.pid!
  t.equal((await call(port, CUSTOMER, 'POST', '/chat/start', chat)).status, 200, 'warm: one chat before the attack')
  const before = { files: openFiles(pid), rss: rssBytes(pid) }

  const attack = await slowAttack(port, ATTACKER, SOCKETS, SLOW_HEAD)
  t.teardown(attack.stop)
  await until('the connections past the per-client cap to be closed', () => attack.closedByServer() >= SOCKETS - 50, 60_000)
  t.equal((await call(port, CUSTOMER, 'GET', '/health/live')).status, 200, 'the customer\'s address gets liveness 200')
  const started = await call(port, CUSTOMER, 'POST', '/chat/start', chat)
  t.equal(started.status, 200, 'and a chat start 200')

  await until('the held connections to be closed by the server', () => attack.closedByServer() === SOCKETS, 60_000)
  t.equal(attack.closedByServer(), SOCKETS, 'every slow connection was closed by the server, none by us')
  t.equal(server.child.exitCode, null, 'the process is still running')
  t.equal((await call(port, CUSTOMER, 'GET', '/health/ready')).status, 200)

  await until('descriptors to return', () => openFiles(pid) <= before.files + 4, 60_000)
  t.ok(openFiles(pid) <= before.files + 4, `descriptors back to where they started (${before.files} -> ${openFiles(pid)})`)
  t.ok(rssBytes(pid) < before.rss + 64 * 1024 * 1024, `memory back near where it started (${before.rss} -> ${rssBytes(pid)} bytes RSS)`)
  const metrics = await call(port, CUSTOMER, 'GET', '/metrics')
  t.match(metrics.body, /ccg_connections_refused_total\{reason="per_client"\} (\d{4})/, 'refusals are counted')
})

t.test('behind a proxy (no per-client cap): the total cap keeps descriptors back, and the process survives 1,100 slow connections', async (t) => {
  // Headers may take 5 s here (the most the service allows), not 3: on a busy machine opening 1,100
  // connections can take longer than 3 s, and the early ones would be closed before the cap is reached.
  const server = start(t, { ...await env(t), TRUST_PROXY: '127.0.0.1', REQUEST_TIMEOUT_MS: '10000' }, { maxOpenFiles: 1024 })
  const port = Number(new URL(await server.listening()).port)
  const attack = await slowAttack(port, ATTACKER, SOCKETS, 'POST /chat/start HTTP/1.1\r\nHost: gw\r\nContent-')
  t.teardown(attack.stop)
  // Partial headers this time: the headers timeout closes them, and the total cap refuses the rest.
  await until('every slow connection to be closed', () => attack.closedByServer() === SOCKETS, 60_000)
  t.equal(server.child.exitCode, null, 'the process is still running')
  t.equal((await call(port, CUSTOMER, 'GET', '/health/live')).status, 200)
  t.equal((await call(port, CUSTOMER, 'POST', '/chat/start', chat)).status, 200)
  const metrics = await call(port, CUSTOMER, 'GET', '/metrics')
  t.match(metrics.body, /ccg_connections_refused_total\{reason="total"\} [1-9]/, 'connections past the total cap were refused')
})

t.test('addresses holding every client slot under ulimit -n 1024: liveness and readiness still answer 200 on the probe slots', async (t) => {
  const server = start(t, { ...await env(t), REQUEST_TIMEOUT_MS: '60000' }, { maxOpenFiles: 1024 })
  const port = Number(new URL(await server.listening()).port)
  const attacks: Attack[] = []
  t.teardown(() => { for (const a of attacks) a.stop() })
  // 1,024 - 103 kept back = 921 connections, 16 of them for probes: 905 for clients. Addresses of 50
  // connections each (the per-client cap) until exactly 905 are held and every other one was refused
  // (past 921 on arrival, or answered 503 on a probe slot); one that a busy listener never accepted
  // is made up for by the next address.
  const CLIENT_SLOTS = 905
  const open = () => attacks.reduce((n, a) => n + a.sockets.filter((s) => !s.destroyed && s.readyState === 'open').length, 0)
  const closed = () => attacks.reduce((n, a) => n + a.closedByServer(), 0)
  await until('every client slot to be held', async () => {
    const held = open()
    const settled = held + closed() === attacks.length * 50
    if (settled && held < CLIENT_SLOTS && attacks.length < 40) attacks.push(await slowAttack(port, `127.0.1.${attacks.length + 1}`, 50, SLOW_HEAD))
    return settled && held === CLIENT_SLOTS
  }, 60_000)
  for (const path of ['/health/live', '/health/ready']) {
    t.equal((await call(port, CUSTOMER, 'GET', path)).status, 200, `${path} gets through (it was reset)`)
  }
  const refused = await call(port, CUSTOMER, 'POST', '/chat/start', chat).catch((err: Error) => ({ status: 0, body: err.message }))
  t.equal(refused.status, 503, 'a chat start on a probe slot is refused, not hung')
  t.equal(server.child.exitCode, null, 'the process is still running')
})

t.test('a connection that never sends a byte is closed by the server', async (t) => {
  const server = start(t, await env(t))
  const port = Number(new URL(await server.listening()).port)
  const silent = connect({ port, host: '127.0.0.1', localAddress: ATTACKER })
  silent.on('error', () => {})
  await once(silent, 'connect')
  await once(silent, 'close')
  t.pass('a connection that never sends a byte is closed')
})
