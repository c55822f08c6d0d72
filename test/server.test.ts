import { execFile } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { basename, dirname, join, relative } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import t from 'tap'
import { startSimulator } from '../src/simulator/connect.js'
import { heldRequest } from './held-request.js'
import { redisKeyPrefix, redisSkip, redisTestUrl } from './redis.js'
import { ROOT, start } from './service-process.js'

// The real entry point in a process of its own: signals, exit codes, and the production build.

// Before any test is declared: an await between declarations lets tap end the run early.
const noRedis = await redisSkip()
const run = promisify(execFile)

// `npm run build`'s compiler and settings into a directory of our own (dist/ may be in use). Without
// the type check, which `npm run typecheck` does: this is about what runs, and stays cheap.
const buildDir = mkdtemp(join(tmpdir(), 'ccg-build-'))
const tsc = join(ROOT, 'node_modules/typescript/bin/tsc')
const build = buildDir.then((dir) => run(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', join(dir, 'dist'), '--noCheck'], { cwd: ROOT })
  .then(() => ({ dir, error: undefined }), (error: Error & { stdout?: string }) => ({ dir, error: `${error.message}\n${error.stdout ?? ''}` })))
t.teardown(async () => { await rm((await build).dir, { recursive: true, force: true }) })

const post = (base: string, body: unknown) =>
  fetch(`${base}/chat/start`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

t.test('SIGTERM: readiness 503 at once, new connections refused, 20 slow in-flight starts finish 200, exit 0', async (t) => {
  const sim = await startSimulator({ latencyMs: 2_500 })
  t.teardown(() => sim.close())
  const server = start(t, {
    CONNECT_SIMULATOR: 'true',
    AWS_ENDPOINT_URL_CONNECT: sim.url,
    RATE_LIMIT_MAX: '1000',
    CONNECT_ATTEMPT_TIMEOUT_MS: '20000',
    CHAT_START_TIMEOUT_MS: '30000',
    SHUTDOWN_GRACE_MS: '30000'
  })
  const base = await server.listening()
  t.equal((await fetch(`${base}/health/ready`)).status, 200, 'ready before the signal')

  const starts = Array.from({ length: 20 }, (_, i) => post(base, { ParticipantDetails: { DisplayName: `Customer ${i}` } }))
  for (const until = Date.now() + 30_000; sim.requests.length < 20 && Date.now() < until;) await sleep(20)
  t.equal(sim.requests.length, 20, 'all 20 are waiting on Connect')
  const probe = await heldRequest(Number(new URL(base).port), 'GET /health/ready HTTP/1.1\r\nHost: gw\r\n')

  server.child.kill('SIGTERM')
  await server.waitFor('draining', (l) => String(l.msg).startsWith('draining'))
  const ready = await probe.finish('\r\n')
  t.equal(ready.status, 503, 'readiness 503 while in-flight starts are still running')
  t.match(JSON.parse(ready.body), { code: 'OVERLOADED', message: 'This replica is shutting down' })
  t.equal(sim.requests.filter((r) => r.status > 0).length, 0, '...and none of them has been answered yet')
  await t.rejects(fetch(`${base}/health/live`), 'new connections are refused')

  const answers = await Promise.all(starts)
  t.same(answers.map((r) => r.status), Array(20).fill(200), 'every in-flight start finished 200')
  for (const r of answers) t.ok(((await r.json()) as { data: { startChatResult: { ParticipantToken?: string } } }).data.startChatResult.ParticipantToken)

  t.same(await server.exited, { code: 0, signal: null }, 'exit 0')
  const msgs = server.lines.map((l) => l.msg)
  t.ok(msgs.indexOf('shut down cleanly') > msgs.lastIndexOf('request completed'), 'the app closed after the last answer')
  t.notMatch(server.stderr(), 'killed by timeout')
})

t.test('SIGINT with Redis configured: closing Redis does not hold the shutdown; exit 0', { skip: noRedis }, async (t) => {
  const server = start(t, { CONNECT_SIMULATOR: 'true', REDIS_URL: redisTestUrl(), REDIS_KEY_PREFIX: redisKeyPrefix(t) })
  const base = await server.listening()
  t.equal((await post(base, { ParticipantDetails: { DisplayName: 'Ann' } })).status, 200)
  server.child.kill('SIGINT')
  t.same(await server.exited, { code: 0, signal: null })
  t.ok(server.lines.some((l) => l.msg === 'shut down cleanly'))
})

t.test('a bad or missing setting stops the process with exit 1 and a message naming it', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{}, /AWS_REGION, CONNECT_INSTANCE_ID, CONNECT_CONTACT_FLOW_ID/],
    [{ CONNECT_SIMULATOR: 'true', PORT: 'not-a-port' }, /PORT/],
    [{ CONNECT_SIMULATOR: 'true', SHUTDOWN_GRACE_MS: '-1' }, /SHUTDOWN_GRACE_MS/],
    [{ CONNECT_SIMULATOR: 'true', METRICS_PORT: '70000' }, /METRICS_PORT/],
    [{ CONNECT_SIMULATOR: 'true', NODE_ENV: 'production' }, /RESUME_TOKEN_SECRET/],
    [{ CONNECT_SIMULATOR: 'true', TRUST_PROXY: '0.0.0.0/0' }, /TRUST_PROXY/]
  ]
  await Promise.all(cases.map(async ([env, names]) => {
    const server = start(t, env)
    const { code } = await server.exited
    t.equal(code, 1, `exit 1 for ${JSON.stringify(env)}`)
    t.match(server.stderr(), new RegExp(`^connect-chat-gateway: .*${names.source}`, 'ms'), `names ${names.source}`)
    t.notOk(server.lines.some((l) => String(l.msg).startsWith('Server listening')), 'never listened')
    t.notMatch(server.stderr(), /\n\s+at /, 'one message, no stack')
  }))
})

t.test('a port already in use stops the process with exit 1 and a fatal log line', async (t) => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => blocker.close())
  const server = start(t, { CONNECT_SIMULATOR: 'true', PORT: String((blocker.address() as { port: number }).port) })
  t.equal((await server.exited).code, 1)
  t.match(server.lines.find((l) => l.level === 60), { msg: 'could not start', err: { code: 'EADDRINUSE' } })
})

/** node_modules holding only the production dependency tree, as `npm ci --omit=dev` would install. */
async function productionModules (dir: string) {
  const { stdout } = await run('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 })
  const top = join(ROOT, 'node_modules')
  for (const path of stdout.split('\n').filter((p) => dirname(p) === top || dirname(dirname(p)) === top && basename(dirname(p)).startsWith('@'))) {
    const target = join(dir, 'node_modules', relative(top, path))
    await mkdir(dirname(target), { recursive: true })
    await symlink(path, target, 'dir')
  }
}

t.test('the production build runs from dist/ with production dependencies only', async (t) => {
  const { dir, error } = await build
  t.notOk(error, 'the build emits')
  await copyFile(join(ROOT, 'package.json'), join(dir, 'package.json'))
  await productionModules(dir)
  const server = start(t, {
    NODE_ENV: 'production',
    CONNECT_SIMULATOR: 'true',
    RESUME_TOKEN_SECRET: 'a-resume-token-secret-of-at-least-32-chars',
    METRICS_PORT: '0'
  }, { args: ['dist/server.js'], cwd: dir })
  const base = await server.listening()
  t.match(await server.waitFor('simulated', (l) => l.level === 40 && String(l.msg).includes('SIMULATED')), { endpoint: /^http:\/\/127\.0\.0\.1:\d+$/ },
    'CONNECT_SIMULATOR=true with no endpoint configured: an in-process simulator, said loudly')
  const metricsPort = (await server.waitFor('metrics port', (l) => l.msg === 'metrics listening on their own port')).port

  const res = await post(base, { ParticipantDetails: { DisplayName: 'Ann' } })
  t.equal(res.status, 200)
  t.equal((await fetch(`${base}/docs/json`)).status, 200, 'the OpenAPI document')
  t.equal((await fetch(`${base}/docs/`)).status, 404, 'no UI in production')
  t.equal((await fetch(`${base}/metrics`)).status, 404, 'metrics are not on the public port')
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
  t.match(metrics, /^ccg_chat_starts_total\{outcome="started"\} 1$/m)
  t.notOk(server.lines.some((l) => typeof l.msg === 'string' && !l.msg.startsWith('{') && l.level === undefined), 'JSON lines only, no pretty printer')

  server.child.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
})
