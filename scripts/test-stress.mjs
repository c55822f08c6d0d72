#!/usr/bin/env node
/* global process, console */
// The suite on a busy machine: three runs in a row while busy loops hold every core, each run's
// result and wall time reported, exit 1 when any run failed. A suite that passes only on a quiet
// machine is not one to trust.
//   npm run test:stress                          # npm test (coverage floors included), three times
//   npm run test:stress -- test/redact.test.ts   # tap with these arguments instead
// STRESS_RUNS (3) and STRESS_SPINNERS (2: both cores of the CI machine) change the counts.
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const runs = Number(process.env.STRESS_RUNS ?? 3)
const spinnerCount = Number(process.env.STRESS_SPINNERS ?? 2)
const args = process.argv.slice(2)
const [command, commandArgs] = args.length > 0
  ? [join(root, 'node_modules/.bin/tap'), args]
  : ['npm', ['test']]

// Each spinner is its own process, so the scheduler spreads them over the cores.
const spinners = Array.from({ length: spinnerCount }, () =>
  spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }))
const stopSpinners = () => { for (const s of spinners) if (s.exitCode === null && s.signalCode === null) s.kill('SIGKILL') }
process.on('exit', stopSpinners)
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => { stopSpinners(); process.exit(130) })

function runOnce () {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint()
    const child = spawn(command, commandArgs, { cwd: root, stdio: 'inherit' })
    child.on('close', (code, signal) => {
      resolve({ ok: code === 0, exit: signal ?? code, seconds: Number(process.hrtime.bigint() - started) / 1e9 })
    })
  })
}

console.log(`test:stress: ${runs} runs of \`${args.length > 0 ? `tap ${args.join(' ')}` : 'npm test'}\` while ${spinnerCount} busy loops spin`)
const results = []
for (let i = 1; i <= runs; i++) {
  const result = await runOnce()
  results.push(result)
  console.log(`test:stress: run ${i}/${runs} ${result.ok ? 'passed' : `FAILED (exit ${result.exit})`} in ${result.seconds.toFixed(1)} s`)
}
stopSpinners()
const failed = results.filter((r) => !r.ok).length
console.log(`test:stress: ${runs - failed} of ${runs} runs passed; wall times ${results.map((r) => `${r.seconds.toFixed(1)} s`).join(', ')}`)
process.exit(failed === 0 ? 0 : 1)
