/**
 * The simulator as its image runs it (docker-compose's `simulator` profile): `npm run build` in this
 * package, then `node dist/main.js`. Built into a directory inside the package, so `ws` and the
 * package's `"type": "module"` resolve as they do in the image.
 */
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const PACKAGE = fileURLToPath(new URL('..', import.meta.url))
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')

t.test('the build emits a runnable entry point: it prints its URL, serves the control API and exits 0 on SIGTERM', async (t) => {
  const out = await mkdtemp(join(PACKAGE, '.build-check-'))
  t.teardown(() => rm(out, { recursive: true, force: true }))
  // Without the type check (npm run typecheck does it): this is about what runs.
  await promisify(execFile)(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', out, '--noCheck'], { cwd: PACKAGE })

  const child = spawn(process.execPath, [join(out, 'main.js')], { env: { ...process.env, SIM_PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const exited = once(child, 'exit')
  const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string]
  const { url } = JSON.parse(line) as { url: string }
  t.equal((await fetch(`${url}/__sim/stats`)).status, 200)
  child.kill('SIGTERM')
  t.same(await exited, [0, null])
})
