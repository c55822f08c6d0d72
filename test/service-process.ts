import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { EnvSchema } from '../src/config.js'
import { startSimulator, type ConnectSimulator, type SimulatorOptions } from '@connect-chat-gateway/simulator'

// The service in a process of its own: for signals, exit codes, the production build, and attacks
// that must not touch the test runner (descriptor starvation under a low `ulimit -n`).

export const ROOT = fileURLToPath(new URL('..', import.meta.url))
export type Line = Record<string, unknown> & { msg?: string; level?: number }

export interface StartOptions {
  /** The program to run (default: this Node); `args` are its arguments. */
  command?: string
  args?: string[]
  cwd?: string
  /** Run under `ulimit -n <n>` (through bash, which then execs node: the pid stays the service's). */
  maxOpenFiles?: number
}

/** The test runner's environment without anything the service reads, plus `env`. */
export function serviceEnv (env: Record<string, string>, keepCoverage = false): NodeJS.ProcessEnv {
  const clean: NodeJS.ProcessEnv = {}
  const ours = new Set(Object.keys(EnvSchema.properties))
  // NODE_V8_COVERAGE stays out of a child running the temporary build: its coverage would refer to
  // files deleted at teardown. A child running src/ from this checkout keeps it.
  for (const [k, v] of Object.entries(process.env)) if (!ours.has(k) && !k.startsWith('AWS_') && (keepCoverage || k !== 'NODE_V8_COVERAGE')) clean[k] = v
  // Production is the default; the tests that mean it say so (NODE_ENV: '' for "unset").
  return { ...clean, AWS_EC2_METADATA_DISABLED: 'true', NODE_ENV: 'development', PORT: '0', HOST: '127.0.0.1', ...env }
}

/**
 * Node's arguments to run one of this checkout's TypeScript files in a child, with the test runner's
 * own loader. tap merges the coverage of every process by file and reads it through one source map
 * per file, so a file compiled by two different loaders (the runner's and tsx) is measured against
 * the wrong map, and whole files drop out of the report depending on the order it reads them in.
 */
export function typescriptArgs (entry: string): string[] {
  const runnerLoader = process.execArgv.some((a) => /typescript|ts-node|tsx/.test(a))
  return runnerLoader ? [...process.execArgv, entry] : ['--import', 'tsx', entry]
}

/**
 * A Connect simulator in the test's process, closed after the test, and the settings that point a
 * service process at it: the service's own build holds no simulator.
 */
export async function simulatedConnect (t: Test, options?: SimulatorOptions): Promise<{ sim: ConnectSimulator; env: Record<string, string> }> {
  const sim = await startSimulator(options)
  t.teardown(() => sim.close())
  return { sim, env: { CONNECT_SIMULATOR: 'true', AWS_ENDPOINT_URL_CONNECT: sim.url } }
}

export function start (t: Test, env: Record<string, string>, options: StartOptions = {}) {
  const { command = process.execPath, args = typescriptArgs('src/server.ts'), cwd = ROOT, maxOpenFiles } = options
  const child = maxOpenFiles === undefined
    ? spawn(command, args, { cwd, env: serviceEnv(env, cwd === ROOT), stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn('bash', ['-c', `ulimit -n ${maxOpenFiles} && exec "$0" "$@"`, command, ...args], { cwd, env: serviceEnv(env, cwd === ROOT), stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: Line[] = []
  let stderr = ''
  let partial = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n')
    partial = parts.pop() ?? ''
    for (const p of parts) { try { lines.push(JSON.parse(p) as Line) } catch { lines.push({ msg: p }) } }
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  // 'close', not 'exit': stdout may still hold the last lines when the process has exited.
  const exited = once(child, 'close').then(([code, signal]) => ({ code: code as number | null, signal: signal as string | null }))
  let closed = false
  void exited.then(() => { closed = true })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })

  async function waitFor (what: string, match: (l: Line) => boolean, ms = 60_000): Promise<Line> {
    const until = Date.now() + ms
    for (;;) {
      const found = lines.find(match)
      if (found) return found
      if (closed || Date.now() > until) throw new Error(`no "${what}" (exit ${child.exitCode}); stderr:\n${stderr.slice(-2000)}`)
      await sleep(20)
    }
  }
  const listening = async () => {
    const line = await waitFor('Server listening', (l) => String(l.msg).startsWith('Server listening at'))
    return String(line.msg).replace('Server listening at ', '')
  }
  return { child, lines, exited, waitFor, listening, stderr: () => stderr }
}
