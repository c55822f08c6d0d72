import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { ROOT } from './service-process.js'

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
