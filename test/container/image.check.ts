import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { startSimulator } from '@connect-chat-gateway/simulator'
import t from 'tap'
import { heldRequest } from '../held-request.js'
import { until } from '../helper.js'
import { start } from '../service-process.js'

// The built image, run as the container would run it: its own files, user, environment, working
// directory and entrypoint, under chroot (containers cannot start on every CI machine; the image's
// filesystem always can). `npm run test:container` (test/container/run.sh) builds the image and
// hands over its unpacked filesystem and its config; this file is not part of `npm test`.

interface ImageConfig { User?: string; Env?: string[]; Entrypoint?: string[] | null; Cmd?: string[] | null; WorkingDir?: string }

const root = process.env.CONTAINER_ROOT
if (!root) throw new Error('CONTAINER_ROOT is not set: run `npm run test:container`')
const config = JSON.parse(process.env.CONTAINER_CONFIG ?? '{}') as ImageConfig
const imageBytes = Number(process.env.CONTAINER_IMAGE_BYTES)
const baseBytes = Number(process.env.CONTAINER_BASE_BYTES)
// What the Dockerfile adds to its base: the production node_modules, dist/ and tini.
const MAX_ADDED_MB = 150
const mb = (bytes: number) => Math.round(bytes / 1e6)

/** The numeric uid:gid of the image's USER, read from the image's own /etc/passwd. */
function imageUser (user: string): { uid: number; gid: number } {
  const [name = '', group] = user.split(':')
  if (/^\d+$/.test(name)) return { uid: Number(name), gid: Number(group ?? name) }
  const entry = readFileSync(join(root!, 'etc/passwd'), 'utf8').split('\n').map((l) => l.split(':')).find((f) => f[0] === name)
  if (!entry) throw new Error(`USER ${user} is not in the image's /etc/passwd`)
  return { uid: Number(entry[2]), gid: Number(entry[3]) }
}

const user = imageUser(config.User ?? '0')
const entrypoint = config.Entrypoint ?? []

/** Runs `command` in the image as its USER, with its Env and WorkingDir plus `env`. */
function inImage (t: Parameters<typeof start>[0], command: string[], env: Record<string, string>) {
  const vars = [...(config.Env ?? []), ...Object.entries(env).map(([k, v]) => `${k}=${v}`)]
  return start(t, {}, {
    command: 'chroot',
    args: [`--userspec=${user.uid}:${user.gid}`, root!, '/usr/bin/env', '-i', '-C', config.WorkingDir ?? '/', ...vars, ...command]
  })
}

/** The pids of `pid`'s children (tini's child is node). */
function children (pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
}

t.test('the image is configured to run as a non-root user through tini, with production defaults', async (t) => {
  t.not(user.uid, 0, `USER ${config.User} is not root`)
  t.same(entrypoint.slice(0, 1), ['/usr/bin/tini'], 'tini is PID 1 (forwards SIGTERM, reaps zombies)')
  t.ok(config.Env?.includes('NODE_ENV=production'), 'NODE_ENV=production')
  t.same(readdirSync(join(root, config.WorkingDir ?? '/')).sort(), ['dist', 'node_modules', 'package.json'], '/app holds only what production runs')
  for (const dev of ['typescript', 'tap', 'tsx', 'eslint', 'playwright-core', 'ws', '@connect-chat-gateway']) {
    t.notOk(readdirSync(join(root, 'app/node_modules')).includes(dev), `no dev dependency ${dev}`)
  }
  t.notOk(readdirSync(join(root, 'app/dist')).includes('simulator'), 'no simulator: it has an image of its own')
})

t.test('image size: what the Dockerfile adds to its base stays small', async (t) => {
  t.ok(imageBytes > 0 && baseBytes > 0, 'sizes were handed over')
  const added = imageBytes - baseBytes
  t.comment(`image ${mb(imageBytes)} MB, base ${mb(baseBytes)} MB`)
  t.ok(mb(added) < MAX_ADDED_MB, `added ${mb(added)} MB < ${MAX_ADDED_MB} MB`)
})

t.test('/app is read-only to the process, /tmp is writable', async (t) => {
  const probe = inImage(t, ['node', '-e', `
    const fs = require('node:fs')
    const tryWrite = (f) => { try { fs.appendFileSync(f, ''); return 'written' } catch (e) { return e.code } }
    console.log(JSON.stringify({ uid: process.getuid(), app: tryWrite('/app/new-file'), dist: tryWrite('/app/dist/server.js'),
      modules: tryWrite('/app/node_modules/fastify/package.json'), tmp: tryWrite('/tmp/container-check') }))`], {})
  const line = await probe.waitFor('probe answer', (l) => typeof l.uid === 'number')
  t.same(line, { uid: user.uid, app: 'EACCES', dist: 'EACCES', modules: 'EACCES', tmp: 'written' },
    'the files are root-owned: the process cannot change them (EACCES, not a read-only mount)')
  t.same(await probe.exited, { code: 0, signal: null }, 'the probe exits 0')
})

t.test('against a simulator on the same host: ready, starts a chat, drains on SIGTERM', async (t) => {
  // chroot keeps the host's network: the image's service reaches a simulator in this process.
  const simulator = await startSimulator({ latencyMs: 1500 })
  t.teardown(() => simulator.close())

  // The image's own CMD, in production mode, configured as an operator would with the simulator as
  // the Connect endpoint and static credentials.
  const server = inImage(t, [...entrypoint, ...(config.Cmd ?? [])], {
    TINI_SUBREAPER: '1',
    PORT: '0',
    HOST: '127.0.0.1',
    METRICS_PORT: '0',
    AWS_REGION: 'eu-west-2',
    AWS_ACCESS_KEY_ID: 'AKIDCONTAINERCHECK',
    AWS_SECRET_ACCESS_KEY: 'container-check-secret',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_ENDPOINT_URL_CONNECT: simulator.url,
    CONNECT_INSTANCE_ID: '00000000-0000-4000-8000-000000000001',
    CONNECT_CONTACT_FLOW_ID: '00000000-0000-4000-8000-000000000002',
    ALLOWED_ORIGINS: 'https://shop.example',
    RESUME_TOKEN_SECRET: 'container-check-resume-token-secret-0123456789',
    // Four chats from one address here: the per-caller limit (3 by default) is not what this checks.
    MAX_OPEN_CHATS_PER_CALLER: '10',
    SHUTDOWN_GRACE_MS: '20000'
  })
  const base = await server.listening()
  const node = children(server.child.pid!)
  t.equal(node.length, 1, 'tini runs one child')
  const uidLine = readFileSync(`/proc/${node[0]}/status`, 'utf8').split('\n').find((l) => l.startsWith('Uid:'))
  t.equal(uidLine?.split(/\s+/)[1], String(user.uid), 'the service process runs as the image user, not root')

  const live = await fetch(`${base}/health/live`)
  t.equal(live.status, 200, '/health/live 200')
  const { version } = JSON.parse(readFileSync(join(root, config.WorkingDir ?? '/', 'package.json'), 'utf8')) as { version: string }
  const service = { version, commit: process.env.CONTAINER_COMMIT }
  t.same(await live.json(), { status: 'ok', ...service }, '/health/live names the version and the commit the image was built from')
  t.same(server.lines.find((l) => l.msg === 'connect-chat-gateway starting')?.service, service, 'so does the start-up line')
  await until('/health/ready 200', async () => (await fetch(`${base}/health/ready`)).status === 200, 30_000)

  const chat = (name: string) => fetch(`${base}/chat/start`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: 'https://shop.example' },
    body: JSON.stringify({ ParticipantDetails: { DisplayName: name } })
  })
  const first = await chat('Ann')
  t.equal(first.status, 200, 'a chat starts')
  const body = await first.json() as { data: { startChatResult: { ContactId?: string; ParticipantToken?: string } } }
  t.ok(body.data.startChatResult.ContactId && body.data.startChatResult.ParticipantToken, 'with a contact and a participant token')
  t.equal(first.headers.get('access-control-allow-origin'), 'https://shop.example', 'CORS for the allowed origin')

  const receivedBefore = simulator.stats().received
  const inFlight = [chat('Bo'), chat('Cy'), chat('Di')]
  await until('the three starts reach the simulator', () => simulator.stats().received >= receivedBefore + 3, 30_000)
  const probe = await heldRequest(Number(new URL(base).port), 'GET /health/ready HTTP/1.1\r\nHost: gw\r\n')

  server.child.kill('SIGTERM') // to tini, which forwards it to node
  await server.waitFor('draining', (l) => String(l.msg).startsWith('draining'))
  t.equal((await probe.finish('\r\n')).status, 503, 'readiness 503 while draining')
  t.same((await Promise.all(inFlight)).map((r) => r.status), [200, 200, 200], 'the in-flight starts finish 200')
  t.same(await server.exited, { code: 0, signal: null }, 'tini exits 0 after node shut down cleanly')
  t.ok(server.lines.some((l) => l.msg === 'shut down cleanly'), 'shut down cleanly')
})
