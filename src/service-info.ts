import { readFileSync } from 'node:fs'

/** Which build is running, for the start-up line and /health/live. */
export interface ServiceInfo { version: string; commit: string }

const COMMIT = /^[0-9a-f]{7,40}$/

function readJson (url: URL): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(url, 'utf8')) as Record<string, unknown>
  } catch {
    return undefined
  }
}

/**
 * The package's version, and the commit `npm run build` recorded beside this file
 * (dist/build-info.json, scripts/build-info.mjs). Run from src/ (npm run dev, the tests) there is
 * no build: the commit is `unknown`. The Lambda bundle has no package.json above it: its
 * build-info.json carries the version too.
 */
export function readServiceInfo (dir = new URL('.', import.meta.url)): ServiceInfo {
  const build = readJson(new URL('build-info.json', dir))
  const version = readJson(new URL('../package.json', dir))?.version ?? build?.version
  const commit = build?.commit
  return {
    version: typeof version === 'string' ? version : 'unknown',
    commit: typeof commit === 'string' && COMMIT.test(commit) ? commit : 'unknown'
  }
}
