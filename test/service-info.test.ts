import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t, { type Test } from 'tap'
import { readServiceInfo } from '../src/service-info.js'

// The build a process runs: the package's version and the commit the build recorded beside dist/.

function layout (t: Test, files: Record<string, string>) {
  const root = t.testdir()
  mkdirSync(join(root, 'dist'))
  for (const [name, content] of Object.entries(files)) writeFileSync(join(root, name), content)
  return pathToFileURL(`${join(root, 'dist')}/`)
}

t.test('version from package.json, commit from dist/build-info.json', async (t) => {
  const dir = layout(t, { 'package.json': '{"version":"1.2.3"}', 'dist/build-info.json': '{"commit":"0123456789abcdef0123456789abcdef01234567"}' })
  t.same(readServiceInfo(dir), { version: '1.2.3', commit: '0123456789abcdef0123456789abcdef01234567' })
})

t.test('no build record, or one that is not a commit id -> commit unknown; no package.json -> version unknown', async (t) => {
  t.same(readServiceInfo(layout(t, { 'package.json': '{"version":"1.2.3"}' })), { version: '1.2.3', commit: 'unknown' })
  t.same(readServiceInfo(layout(t, { 'package.json': '{"version":"1.2.3"}', 'dist/build-info.json': '{"commit":"<script>"}' })).commit, 'unknown')
  t.same(readServiceInfo(layout(t, { 'dist/build-info.json': 'not json' })), { version: 'unknown', commit: 'unknown' })
})

t.test('a bundle with no package.json above it (the Lambda asset) -> the version its build-info.json carries', async (t) => {
  const commit = '0123456789abcdef0123456789abcdef01234567'
  t.same(readServiceInfo(layout(t, { 'dist/build-info.json': `{"commit":"${commit}","version":"1.2.4"}` })), { version: '1.2.4', commit })
  t.same(readServiceInfo(layout(t, { 'package.json': '{"version":"1.2.3"}', 'dist/build-info.json': `{"commit":"${commit}","version":"9.9.9"}` })).version, '1.2.3', 'package.json wins')
})
