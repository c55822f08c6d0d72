/* global process, URL */
// `npm run build`'s last step: records the commit being built in dist/build-info.json, which the
// service reports in its start-up line and on /health/live (src/service-info.ts). SOURCE_COMMIT wins
// (a Docker build argument: the image's build context has no .git); else git's HEAD; else unknown.
// Usage: node scripts/build-info.mjs [dist directory, default dist/]
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const dist = process.argv[2] ?? fileURLToPath(new URL('../dist', import.meta.url))

let commit = process.env.SOURCE_COMMIT?.trim()
if (!commit) {
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    commit = 'unknown'
  }
}
// The version too, for a build with no package.json above it (the Lambda bundle, dist/lambda/).
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
writeFileSync(join(dist, 'build-info.json'), `${JSON.stringify({ commit, version })}\n`)
