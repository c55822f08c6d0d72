import { execFile } from 'node:child_process'
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { pathToFileURL } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import t from 'tap'
import { startSimulator } from '@connect-chat-gateway/simulator'
import { heldRequest } from './held-request.js'
import { metricSample } from './helper.js'
import { redisKeyPrefix, redisSkip, redisTestUrl } from './redis.js'
import { ROOT, simulatedConnect, start, typescriptArgs } from './service-process.js'

// The real entry point in a process of its own: signals, exit codes, and the production build.

// Before any test is declared: an await between declarations lets tap end the run early.
const noRedis = await redisSkip()
const run = promisify(execFile)

// `npm run build`'s compiler and settings into a directory of our own (dist/ may be in use). Without
// the type check, which `npm run typecheck` does: this is about what runs, and stays cheap.
const buildDir = mkdtemp(join(tmpdir(), 'ccg-build-'))
const tsc = join(ROOT, 'node_modules/typescript/bin/tsc')
// The commit as a Docker build would pass it (SOURCE_COMMIT), recorded by the build's last step.
const BUILT_COMMIT = 'c0ffee0123456789abcdef0123456789abcdef01'
const build = buildDir.then((dir) => run(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', join(dir, 'dist'), '--noCheck'], { cwd: ROOT })
  .then(() => run(process.execPath, ['scripts/build-info.mjs', join(dir, 'dist')], { cwd: ROOT, env: { ...process.env, SOURCE_COMMIT: BUILT_COMMIT } }))
  .then(() => ({ dir, error: undefined }), (error: Error & { stdout?: string }) => ({ dir, error: `${error.message}\n${error.stdout ?? ''}` })))
t.teardown(async () => { await rm((await build).dir, { recursive: true, force: true }) })

const AWS = { AWS_REGION: 'eu-west-2', CONNECT_INSTANCE_ID: 'instance', CONNECT_CONTACT_FLOW_ID: 'flow' }
/** No credentials anywhere: no shared files, no instance metadata (service-process strips AWS_*). */
const NO_CREDENTIAL_FILES = { AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials', AWS_CONFIG_FILE: '/nonexistent/config' }

const post = (base: string, body: unknown) =>
  fetch(`${base}/chat/start`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

t.test('SIGTERM: readiness 503 at once, new connections refused, 20 slow in-flight starts finish 200, exit 0', async (t) => {
  const { sim, env } = await simulatedConnect(t, { latencyMs: 2_500 })
  const server = start(t, {
    ...env,
    RATE_LIMIT_MAX: '1000',
    MAX_OPEN_CHATS_PER_CALLER: '1000',
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
  const server = start(t, { ...(await simulatedConnect(t)).env, REDIS_URL: redisTestUrl(), REDIS_KEY_PREFIX: redisKeyPrefix(t) })
  const base = await server.listening()
  t.equal((await post(base, { ParticipantDetails: { DisplayName: 'Ann' } })).status, 200)
  server.child.kill('SIGINT')
  t.same(await server.exited, { code: 0, signal: null })
  t.ok(server.lines.some((l) => l.msg === 'shut down cleanly'))
})

t.test('SIGHUP re-reads WIDGETS_FILE: a new widget is served, a broken file is refused and logged, the process stays up', async (t) => {
  const { sim, env } = await simulatedConnect(t)
  const dir = await mkdtemp(join(tmpdir(), 'ccg-widgets-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'widgets.json')
  const origin = 'https://shop.example.com'
  const widget = (id: string) => ({ id, contactFlowId: `flow-${id}`, allowedOrigins: [origin] })
  await writeFile(file, JSON.stringify({ widgets: [widget('sales')] }))
  const server = start(t, { ...env, ALLOWED_ORIGINS: origin, WIDGETS_FILE: file, LOG_LEVEL: 'info' })
  const base = await server.listening()
  const startOn = (id: string) => fetch(`${base}/chat/start/${id}`, {
    method: 'POST', headers: { 'content-type': 'application/json', origin }, body: JSON.stringify({ ParticipantDetails: { DisplayName: 'Ann' } })
  })
  t.equal((await startOn('sales')).status, 200)
  t.equal((await startOn('support')).status, 404, 'not in the file yet')

  await writeFile(file, JSON.stringify({ widgets: [widget('sales'), widget('support')] }))
  server.child.kill('SIGHUP')
  const applied = await server.waitFor('reloaded', (l) => String(l.msg).startsWith('widget profiles reloaded'))
  t.same(applied.widgets, ['sales', 'support'])
  t.equal((await startOn('support')).status, 200, 'the new widget is served without a restart')
  t.equal(sim.requests.at(-1)?.input.ContactFlowId, 'flow-support', 'with its own flow')

  await writeFile(file, '{ "widgets": [ { "id": "sales" ')
  server.child.kill('SIGHUP')
  const refused = await server.waitFor('not reloaded', (l) => String(l.msg).startsWith('widget profiles NOT reloaded'))
  t.equal(refused.level, 50)
  t.equal((await startOn('support')).status, 200, 'the profiles in use stay')
  t.equal((await fetch(`${base}/health/ready`)).status, 200, 'and the process is up and ready')
  t.equal(server.child.exitCode, null)
  const metrics = await (await fetch(`${base}/metrics`)).text()
  t.equal(metricSample(metrics, 'ccg_widget_reloads_total{result="applied"}'), 1)
  t.equal(metricSample(metrics, 'ccg_widget_reloads_total{result="refused"}'), 1)
  server.child.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
})

t.test('a bad or missing setting stops the process with exit 1 and a message naming it', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{}, /AWS_REGION, CONNECT_INSTANCE_ID, CONNECT_CONTACT_FLOW_ID/],
    [{ CONNECT_SIMULATOR: 'true', PORT: 'not-a-port' }, /PORT/],
    [{ CONNECT_SIMULATOR: 'true', SHUTDOWN_GRACE_MS: '-1' }, /SHUTDOWN_GRACE_MS/],
    [{ CONNECT_SIMULATOR: 'true', METRICS_PORT: '70000' }, /METRICS_PORT/],
    [{ CONNECT_SIMULATOR: 'true', NODE_ENV: 'production' }, /RESUME_TOKEN_SECRET/],
    // NODE_ENV unset is production: it started with a random resume key before.
    [{ CONNECT_SIMULATOR: 'true', NODE_ENV: '' }, /RESUME_TOKEN_SECRET: required in production/],
    [{ CONNECT_SIMULATOR: 'true', TRUST_PROXY: '0.0.0.0/0' }, /TRUST_PROXY/],
    [{ CONNECT_SIMULATOR: 'true', NODE_ENV: 'production', RESUME_TOKEN_SECRET: 'r'.repeat(32) }, /ALLOWED_ORIGINS: required in production/],
    [{ ...AWS, AWS_REGION: 'London' }, /AWS_REGION: "London" is not a region name/],
    [{ ...AWS, AWS_REGION: 'eu_west_2' }, /AWS_REGION/],
    [{ ...AWS, AWS_REGION: 'eu-west-22' }, /AWS_REGION/],
    [{ CONNECT_SIMULATOR: 'true', ALLOWED_ORIGINS: '*' }, /ALLOWED_ORIGINS: "\*" .*https:\/\/\*\.example\.com/],
    // The build holds no simulator to start in-process: it needs one run on its own.
    [{ CONNECT_SIMULATOR: 'true' }, /CONNECT_SIMULATOR=true needs AWS_ENDPOINT_URL_CONNECT/],
    [{ CONNECT_SIMULATOR: 'true', NODE_ENV: 'production', RESUME_TOKEN_SECRET: 'r'.repeat(32), ALLOWED_ORIGINS: 'none' }, /CONNECT_SIMULATOR=true needs AWS_ENDPOINT_URL_CONNECT/]
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
  const server = start(t, { CONNECT_SIMULATOR: 'true', AWS_ENDPOINT_URL_CONNECT: 'http://127.0.0.1:9', PORT: String((blocker.address() as { port: number }).port) })
  t.equal((await server.exited).code, 1)
  t.match(server.lines.find((l) => l.level === 60), { msg: 'could not start', err: { code: 'EADDRINUSE' } })
})

/** `npm ci --omit=dev --workspaces=false` into `dir`: the dependencies the image installs, from npm's cache when it has them. */
async function productionInstall (dir: string) {
  for (const file of ['package.json', 'package-lock.json']) await copyFile(join(ROOT, file), join(dir, file))
  await run('npm', ['ci', '--omit=dev', '--workspaces=false', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: dir, maxBuffer: 16 * 1024 * 1024 })
}

const installed = build.then(async ({ dir, error }) => {
  if (error) return { dir, error }
  return productionInstall(dir).then(() => ({ dir, error: undefined }), (err: Error) => ({ dir, error: `npm ci --omit=dev: ${err.message}` }))
})

async function jsFiles (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries.filter((e) => e.isFile() && e.name.endsWith('.js')).map((e) => join(e.parentPath, e.name)).sort()
}

// The entry point runs (it listens); importing it would start it.
const ENTRY_POINTS = ['server.js']

t.test('dist/ holds only what production runs, and every module imports with production dependencies only', async (t) => {
  const { dir, error } = await installed
  t.notOk(error, 'the build emits and npm ci --omit=dev --workspaces=false installs')
  const dist = join(dir, 'dist')
  const files = await jsFiles(dist)
  const names = files.map((f) => relative(dist, f))
  t.notOk(names.some((n) => n === 'dev.js' || n.startsWith('demo')), 'no dev entry point, no demo server')
  t.ok(names.includes('server.js'), 'the service')
  t.notOk(names.some((n) => n.startsWith('simulator')), 'no simulator: it is a package of its own, for development and tests')
  t.notOk((await readdir(join(dir, 'node_modules', '@fastify'))).includes('swagger-ui'), 'no UI-only package installed')
  const packages = await readdir(join(dir, 'node_modules'))
  t.notOk(packages.includes('ws') || packages.includes('@connect-chat-gateway'), 'neither the simulator package nor its WebSocket library installed')

  const modules = files.filter((f) => !ENTRY_POINTS.includes(relative(dist, f)))
  const script = `for (const f of ${JSON.stringify(modules.map((f) => pathToFileURL(f).href))}) await import(f)`
  const imported = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: dir }).then(() => 'ok', (err: Error & { stderr?: string }) => err.stderr ?? err.message)
  t.equal(imported, 'ok', `${modules.length} modules import`)
})

t.test('the production build runs from dist/ with production dependencies only; admin surface on METRICS_PORT only', async (t) => {
  const { dir, error } = await installed
  t.notOk(error, 'the build emits and npm ci --omit=dev installs')
  const { env } = await simulatedConnect(t)
  const server = start(t, {
    ...env,
    NODE_ENV: 'production',
    RESUME_TOKEN_SECRET: 'a-resume-token-secret-of-at-least-32-chars',
    ALLOWED_ORIGINS: 'https://shop.example.com',
    METRICS_PORT: '0'
  }, { args: ['dist/server.js'], cwd: dir })
  const base = await server.listening()
  const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }
  t.same(server.lines.find((l) => l.msg === 'connect-chat-gateway starting')?.service, { version, commit: BUILT_COMMIT }, 'the start-up line names the build')
  t.same(await (await fetch(`${base}/health/live`)).json(), { status: 'ok', version, commit: BUILT_COMMIT }, 'so does /health/live')
  t.match(await server.waitFor('simulated', (l) => l.level === 40 && String(l.msg).includes('SIMULATED')), { endpoint: env.AWS_ENDPOINT_URL_CONNECT },
    'CONNECT_SIMULATOR=true toward a simulator run on its own, said loudly')
  const metricsPort = (await server.waitFor('metrics port', (l) => l.msg === 'metrics listening on their own port')).port

  const res = await post(base, { ParticipantDetails: { DisplayName: 'Ann' } })
  t.equal(res.status, 200)
  t.equal((await fetch(`${base}/health/ready`)).status, 200)
  for (const path of ['/docs/json', '/docs/', '/metrics']) t.equal((await fetch(`${base}${path}`)).status, 404, `${path} not on the public port`)
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
  t.match(metrics, /^ccg_chat_starts_total\{outcome="started"\} 1$/m)
  const doc = await fetch(`http://127.0.0.1:${metricsPort}/docs/json`)
  t.equal(doc.status, 200, 'the OpenAPI document on the metrics port')
  t.ok(((await doc.json()) as { paths: Record<string, { post?: unknown }> }).paths['/chat/start']?.post)
  t.notOk(server.lines.some((l) => typeof l.msg === 'string' && !l.msg.startsWith('{') && l.level === undefined), 'JSON lines only, no pretty printer')

  server.child.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
})

t.test('a start without NODE_ENV is production: admin surface off the public port, metrics on loopback, plain-http JWKS warned about', async (t) => {
  const server = start(t, {
    ...(await simulatedConnect(t)).env,
    NODE_ENV: '',
    RESUME_TOKEN_SECRET: 'a-resume-token-secret-of-at-least-32-chars',
    ALLOWED_ORIGINS: 'https://shop.example.com',
    CUSTOMER_JWKS_URL: 'http://idp.example.com/.well-known/jwks.json',
    METRICS_PORT: '0'
  })
  const base = await server.listening()
  t.match(server.lines.find((l) => l.msg === 'connect-chat-gateway starting'), { mode: 'production' })
  t.ok(server.lines.some((l) => l.level === 40 && String(l.msg).startsWith('CUSTOMER_JWKS_URL is plain http://')), 'warned at start-up')
  const admin = await server.waitFor('metrics port', (l) => l.msg === 'metrics listening on their own port')
  t.equal(admin.host, '127.0.0.1')
  for (const path of ['/metrics', '/docs/json', '/docs/']) t.equal((await fetch(`${base}${path}`)).status, 404, `${path} not on the public port (it was 200)`)
  t.equal((await fetch(`http://127.0.0.1:${String(admin.port)}/metrics`)).status, 200)
  t.equal((await fetch(`http://127.0.0.1:${String(admin.port)}/health/live`)).status, 200, 'the probes on the admin port too')
  server.child.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
})

t.test('one start-up line at info: mode, Connect, region, effective settings; secrets only as set or unset', async (t) => {
  const secret = 'a-resume-token-secret-that-must-not-be-logged'
  const server = start(t, { ...(await simulatedConnect(t)).env, AWS_REGION: 'eu-central-2', RESUME_TOKEN_SECRET: secret, ALLOWED_ORIGINS: 'https://*.example.com' })
  await server.listening()
  const summaries = server.lines.filter((l) => l.msg === 'connect-chat-gateway starting')
  t.equal(summaries.length, 1)
  t.match(summaries[0], {
    level: 30, mode: 'development', connect: 'simulator', region: 'eu-central-2', allowedOrigins: ['https://*.example.com'],
    settings: { RESUME_TOKEN_SECRET: 'set', CUSTOMER_JWT_SECRET: 'unset', PORT: 0, RATE_LIMIT_MAX: 10 }
  })
  t.notOk(server.lines.some((l) => JSON.stringify(l).includes(secret)), 'the secret is in no log line')
  server.child.kill('SIGTERM')
  await server.exited
})

t.test('no AWS credentials: starts, liveness 200, readiness 503 with the reason logged; a chat start logs why it failed', async (t) => {
  const sim = await startSimulator()
  t.teardown(() => sim.close())
  const server = start(t, { ...AWS, ...NO_CREDENTIAL_FILES, AWS_ENDPOINT_URL_CONNECT: sim.url })
  const base = await server.listening()
  const failed = await server.waitFor('credentials failed', (l) => String(l.msg).startsWith('no AWS credentials'))
  t.match(failed, { level: 50, errorName: 'CredentialsProviderError', reason: /Could not load credentials/ })
  t.equal((await fetch(`${base}/health/live`)).status, 200)
  const ready = await fetch(`${base}/health/ready`)
  t.equal(ready.status, 503)
  t.match(await ready.json(), { code: 'NOT_READY' })
  const res = await post(base, { ParticipantDetails: { DisplayName: 'Ann' } })
  t.equal(res.status, 502)
  t.notMatch(await res.text(), /credentials/i, 'the caller sees our message only')
  const line = await server.waitFor('the failed start', (l) => l.msg === 'chat start failed upstream')
  t.match(line, { upstream: { errorName: 'CredentialsProviderError', message: /Could not load credentials/ } })
  t.equal(sim.requests.length, 0)
  server.child.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
})

t.test('credentials from the environment: the provider is logged, never the keys; ready 200', async (t) => {
  const sim = await startSimulator()
  t.teardown(() => sim.close())
  const keys = { AWS_ACCESS_KEY_ID: 'AKIDENVIRONMENTKEY', AWS_SECRET_ACCESS_KEY: 'environment-secret-access-key' }
  const server = start(t, { ...AWS, ...NO_CREDENTIAL_FILES, ...keys, AWS_ENDPOINT_URL_CONNECT: sim.url })
  const base = await server.listening()
  t.match(server.lines.find((l) => l.msg === 'AWS credentials resolved'), { level: 30, provider: 'CREDENTIALS_ENV_VARS' })
  t.equal((await fetch(`${base}/health/ready`)).status, 200)
  t.equal((await post(base, { ParticipantDetails: { DisplayName: 'Ann' } })).status, 200)
  const all = JSON.stringify(server.lines) + server.stderr()
  t.notMatch(all, keys.AWS_ACCESS_KEY_ID)
  t.notMatch(all, keys.AWS_SECRET_ACCESS_KEY)
  server.child.kill('SIGTERM')
  await server.exited
})

t.test('npm run dev listens on 127.0.0.1 unless HOST says otherwise, with the README\'s development defaults', async (t) => {
  const dev = start(t, { HOST: '', LOG_LEVEL: 'info' }, { args: typescriptArgs('demo/dev.ts') })
  const base = await dev.listening()
  t.match(base, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.match(dev.lines.find((l) => l.msg === 'connect-chat-gateway starting'), { settings: { HOST: '127.0.0.1', ALLOWED_ATTRIBUTES: 'topic,language', RATE_LIMIT_MAX: 100 }, connect: 'simulator' })
  dev.child.kill('SIGTERM')
  t.same(await dev.exited, { code: 0, signal: null }, 'close-with-grace: exit 0')
})

t.test('npm run dev: a DEMO_PORT that is not a port, or is taken, stops it with exit 1 and a message naming DEMO_PORT', async (t) => {
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => taken.close())
  const port = String((taken.address() as { port: number }).port)
  const cases: Array<[string, RegExp]> = [
    ['abc', /DEMO_PORT: "abc" is not a port/],
    ['70000', /DEMO_PORT: "70000" is not a port/],
    [port, /the demo page could not listen \(.*EADDRINUSE.*\); set DEMO_PORT to a free port/]
  ]
  await Promise.all(cases.map(async ([value, message]) => {
    const dev = start(t, { DEMO_PORT: value }, { args: typescriptArgs('demo/dev.ts') })
    t.same(await dev.exited, { code: 1, signal: null }, `exit 1 for DEMO_PORT=${value}`)
    t.match(dev.stderr(), message)
    t.notMatch(dev.stderr(), /\n\s+at /, 'no stack')
  }))
})
