import { execFile } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { ROOT, typescriptArgs } from './service-process.js'

// The test harness itself: what .taprc loads into every test process.

t.test('the SDK\'s Node-version warning is dropped by exact match; every other warning is still printed', async (t) => {
  const script = `
    process.emitWarning('NodeVersionSupportWarning: The AWS SDK for JavaScript (v3)\\nversions published after the first week of January 2027')
    process.emitWarning('NodeVersionSupportWarning: something else')
    process.emitWarning('an unrelated warning')
    process.emitWarning('a deprecation', 'DeprecationWarning')`
  const { stderr } = await promisify(execFile)(process.execPath, ['--import=./test/setup/quiet-sdk-warning.js', '-e', script], { cwd: ROOT })
  t.notMatch(stderr, 'The AWS SDK for JavaScript')
  t.match(stderr, 'Warning: NodeVersionSupportWarning: something else')
  t.match(stderr, 'Warning: an unrelated warning')
  t.match(stderr, 'DeprecationWarning: a deprecation')
})

t.test('a child running this checkout\'s TypeScript uses the runner\'s own loader, so tap reads one source map per file', async (t) => {
  // Under tap, the child gets the test process's loader flags; tsx is only the fallback outside it.
  t.same(typescriptArgs('src/server.ts'), [...process.execArgv, 'src/server.ts'])
  t.ok(process.execArgv.some((a) => a.includes('typescript')), 'tap runs this file through its TypeScript loader')
  const spawnsTsx = readdirSync(join(ROOT, 'test'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && f !== 'service-process.ts')
    .filter((f) => /['"]--import['"],\s*['"]tsx['"]|--import[= ]tsx/.test(readFileSync(join(ROOT, 'test', f), 'utf8')))
  t.same(spawnsTsx, [], 'no test starts a child with tsx directly')
})
