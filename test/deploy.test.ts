import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { EnvSchema } from '../src/config.js'
import { build, ORIGIN, startChat } from './helper.js'
import { ROOT } from './service-process.js'

// deploy/nginx.conf and docker-compose.yml against the service they run.

t.test('nginx lets an over-size body through to the gateway, which answers its own JSON 413 with CORS', async (t) => {
  const conf = await readFile(join(ROOT, 'deploy/nginx.conf'), 'utf8')
  const [, size = '', unit = ''] = /^\s*client_max_body_size\s+(\d+)([km]?);/m.exec(conf) ?? []
  const nginxLimit = Number(size) * ({ k: 1024, m: 1024 * 1024 }[unit.toLowerCase()] ?? 1)
  const h = await build(t)
  // Just under nginx's limit: had nginx refused it, the browser would get nginx's HTML page without CORS.
  const res = await startChat(h.app, JSON.stringify({ ParticipantDetails: { DisplayName: 'x'.repeat(nginxLimit - 100) } }), { origin: ORIGIN })
  t.equal(res.statusCode, 413, `a body just under ${nginxLimit} bytes passes nginx and the gateway refuses it`)
  t.match(res.json(), { code: 'BODY_TOO_LARGE' })
  t.equal(res.headers['access-control-allow-origin'], ORIGIN)
})

// docker-compose.yml cannot be run here (no container engine that starts containers); it is parsed
// and checked against what the service, the simulator and nginx actually read.
t.test('docker-compose.yml: every setting passed is one its program reads; references, ports and files hold together', async (t) => {
  const compose = parse(await readFile(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as Compose
  const services = compose.services
  t.same(Object.keys(services).sort(), ['connect-simulator', 'gateway', 'gateway-simulated', 'lb', 'redis'])

  const serviceSettings = new Set(Object.keys(EnvSchema.properties))
  const simulatorMain = await readFile(join(ROOT, 'packages/simulator/src/main.ts'), 'utf8')
  for (const [name, service] of Object.entries(services)) {
    for (const dep of Object.keys(service.depends_on ?? {})) t.ok(dep in services, `${name} depends on ${dep}, which exists`)
    if (service.build === undefined) continue
    const env = Object.keys(service.environment ?? {})
    if (service.build === '.') {
      // The image's own CMD: the service, which reads its settings and the AWS SDK's standard variables.
      t.same(env.filter((k) => !serviceSettings.has(k) && !k.startsWith('AWS_')), [], `${name}: every variable is a setting of the service`)
      t.equal(service.stop_grace_period, '20s')
      t.ok(Number(service.environment?.SHUTDOWN_GRACE_MS) < 20_000, `${name}: the drain ends before compose kills the container`)
    } else {
      t.same(service.build, { context: '.', target: 'simulator' }, `${name} builds the Dockerfile's simulator target`)
      t.equal(service.command, undefined, `${name} runs that image's own CMD`)
      t.same(env.filter((k) => !new RegExp(`\\b${k}\\b`).test(simulatorMain)), [], `${name}: every variable is one the simulator reads`)
    }
  }
  // The simulator's stage runs its built entry point; the last stage (a plain `docker build`) is the service.
  const stages = (await readFile(join(ROOT, 'Dockerfile'), 'utf8')).split(/^FROM /m).slice(1)
  const simulatorStage = stages.find((s) => /^\S+ AS simulator\n/.test(s))
  t.match(simulatorStage, /^CMD \["node", "dist\/main\.js"\]$/m, 'the simulator image runs its built entry point')
  t.match(simulatorStage, /COPY --from=simulator-build \S+ \/app\/packages\/simulator\/dist \.\/dist/, 'built from its package (npm run build there)')
  t.match(stages.at(-1), /^CMD \["node", "dist\/server\.js"\]$/m, 'the default target is the service')
  const sim = services['connect-simulator']!
  t.equal(services['gateway-simulated']!.environment?.AWS_ENDPOINT_URL_CONNECT, `http://connect-simulator:${sim.environment?.SIM_PORT}`, 'the simulated replicas call the simulator where it listens')
  t.same(sim.ports, [`127.0.0.1:${sim.environment?.SIM_PORT}:${sim.environment?.SIM_PORT}`], 'its control API only on loopback')
  const conf = await readFile(join(ROOT, 'deploy/nginx.conf'), 'utf8')
  t.match(conf, /set \$gateway http:\/\/gateway:3000;/, 'nginx sends to the replicas\' network alias on the service port')
  t.same(services.lb!.volumes, ['./deploy/nginx.conf:/etc/nginx/nginx.conf:ro'])
})

interface Compose {
  services: Record<string, {
    build?: string | { context: string; target: string }
    command?: string[]
    environment?: Record<string, string>
    depends_on?: Record<string, unknown>
    ports?: string[]
    volumes?: string[]
    stop_grace_period?: string
  }>
}
