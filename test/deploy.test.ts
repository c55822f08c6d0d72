import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { build, ORIGIN, startChat } from './helper.js'
import { ROOT } from './service-process.js'

// deploy/nginx.conf (the compose load balancer) against the service it fronts.

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
