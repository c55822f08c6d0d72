/* global process, URL, console */
// `npm run build:lambda`: src/lambda.ts and everything it imports, in one ESM file for Lambda's
// Node 22 runtime: dist/lambda/index.mjs (handler `index.handler`), its source map and
// build-info.json. The CDK app deploys dist/lambda/ as the function's code.
// Usage: node scripts/build-lambda.mjs [--out=dir] [--sdk=bundled|external]
import { execFileSync } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** Inputs that must never reach the function: the simulator, dev and demo code, dev-only packages. */
const DEV_ONLY = /(^|\/)(src\/simulator|packages\/simulator|demo|bench|test)\/|node_modules\/(pino-pretty|@fastify\/swagger-ui|@fastify\/static|tsx|esbuild)\//

/**
 * Bundles the Lambda entry into `outdir`. `sdk: 'external'` leaves the AWS SDK (and Smithy) to the
 * runtime's own copy: a smaller file, but the runtime's SDK version, not the one tested here.
 * Returns the bundle's size and the metafile's inputs, largest first.
 */
export async function buildLambda ({ outdir = join(ROOT, 'dist/lambda'), sdk = 'bundled' } = {}) {
  rmSync(outdir, { recursive: true, force: true })
  mkdirSync(outdir, { recursive: true })
  const outfile = join(outdir, 'index.mjs')
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: [join(ROOT, 'src/lambda.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    minify: true,
    sourcemap: true,
    metafile: true,
    logLevel: 'warning',
    // Imported only outside production (the docs UI) or only on a terminal (pretty logs): never in Lambda.
    external: ['@fastify/swagger-ui', 'pino-pretty', ...(sdk === 'external' ? ['@aws-sdk/*', '@smithy/*'] : [])],
    // CommonJS dependencies call require() for Node's own modules; an ES module has no require of its own.
    banner: { js: 'import { createRequire as __ccgRequire } from \'node:module\'; const require = __ccgRequire(import.meta.url);' }
  })
  const inputs = Object.entries(result.metafile.outputs[relative(ROOT, outfile)].inputs)
    .map(([path, { bytesInOutput }]) => ({ path, bytes: bytesInOutput }))
    .sort((a, b) => b.bytes - a.bytes)
  const devOnly = inputs.filter(({ path }) => DEV_ONLY.test(path))
  if (devOnly.length > 0) throw new Error(`the Lambda bundle must not contain ${devOnly.map((i) => i.path).join(', ')}`)
  execFileSync(process.execPath, [join(ROOT, 'scripts/build-info.mjs'), outdir], { stdio: 'inherit' })
  const bytes = result.metafile.outputs[relative(ROOT, outfile)].bytes
  return { outfile, bytes, inputs, metafile: result.metafile }
}

/** Bytes per package (or per folder of our own code), largest first. */
export function byPackage (inputs) {
  const sizes = new Map()
  for (const { path, bytes } of inputs) {
    const name = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)?.[1] ?? path.split('/').slice(0, 2).join('/')
    sizes.set(name, (sizes.get(name) ?? 0) + bytes)
  }
  return [...sizes].sort((a, b) => b[1] - a[1])
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1]
  const out = arg('out')
  const { outfile, bytes, inputs, metafile } = await buildLambda({ ...(out ? { outdir: out } : {}), sdk: arg('sdk') ?? 'bundled' })
  // The metafile beside the asset, not in it: esbuild's analyser (https://esbuild.github.io/analyze/) reads it.
  writeFileSync(join(outfile, '../../lambda-meta.json'), JSON.stringify(metafile))
  const kib = (n) => `${(n / 1024).toFixed(0)} KiB`
  console.log(`${relative(ROOT, outfile)}: ${kib(bytes)} (${inputs.length} modules); largest packages:`)
  for (const [name, size] of byPackage(inputs).slice(0, 8)) console.log(`  ${name.padEnd(36)} ${kib(size)}`)
}
