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
 * no build: the commit is `unknown`.
 */
export function readServiceInfo (dir = new URL('.', import.meta.url)): ServiceInfo {
  const version = readJson(new URL('../package.json', dir))?.version
  const commit = readJson(new URL('build-info.json', dir))?.commit
  return {
    version: typeof version === 'string' ? version : 'unknown',
    commit: typeof commit === 'string' && COMMIT.test(commit) ? commit : 'unknown'
  }
}
