/**
 * The bundle `npm run build:lambda` makes, built here into a temporary directory, loaded by a fresh
 * Node process as Lambda's runtime would (import, then `handler(event, context)`), answering a chat
 * start against the simulator, its resume-token key read from a Secrets Manager stand-in.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { buildLambda } from '../../scripts/build-lambda.mjs'
import { startSimulator } from '@connect-chat-gateway/simulator'
import { ORIGIN } from '../helper.js'
import { httpApiEvent } from './events.js'
import { startSecretsManager } from './secrets-manager.js'

const run = promisify(execFile)

t.test('the bundle loads in a fresh process and answers a chat start through index.handler', async (t) => {
  const outdir = t.testdir()
  const built = await buildLambda({ outdir })
  t.equal(built.outfile, join(outdir, 'index.mjs'))
  t.ok(existsSync(`${built.outfile}.map`), 'with its source map')
  t.match(JSON.parse(readFileSync(join(outdir, 'build-info.json'), 'utf8')), { version: /^\d+\.\d+\.\d+/ }, 'and the build it is')
  t.notOk(built.inputs.some(({ path }) => /src\/simulator\/|demo\/|pino-pretty|swagger-ui/.test(path)), 'no simulator, demo or dev-only package inside')
  t.ok(built.inputs.some(({ path }) => path.includes('@aws-sdk/client-connect')), 'the AWS SDK is bundled')
  t.ok(built.inputs.some(({ path }) => path.includes('@aws-sdk/client-secrets-manager')), 'with the Secrets Manager client')

  const sim = await startSimulator({ participant: false })
  t.teardown(() => sim.close())
  const sm = await startSecretsManager(t)
  sm.secrets.set('prod/chat/resume-token', { string: 'bundle-resume-key-'.padEnd(40, 'b') })
  const invoke = `
    const { handler } = await import(${JSON.stringify(pathToFileURL(built.outfile).href)})
    const result = await handler(JSON.parse(process.env.EVENT), { awsRequestId: 'bundle-test' })
    process.stdout.write('\\n' + JSON.stringify(result))
    process.exit(0)`
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', invoke], {
    cwd: outdir,
    timeout: 60_000,
    env: {
      PATH: process.env.PATH,
      AWS_REGION: 'eu-west-2',
      AWS_ACCESS_KEY_ID: 'AKIDTEST',
      AWS_SECRET_ACCESS_KEY: 'test-secret',
      AWS_ENDPOINT_URL_CONNECT: sim.url,
      CONNECT_INSTANCE_ID: '8f2e4a77-1c3b-4d5e-9f60-7a8b9c0d1e2f',
      CONNECT_CONTACT_FLOW_ID: '1b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b',
      ALLOWED_ORIGINS: ORIGIN,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.url,
      SECRET_IDS: JSON.stringify({ RESUME_TOKEN_SECRET: 'prod/chat/resume-token' }),
      EVENT: JSON.stringify(httpApiEvent())
    }
  })
  const lines = stdout.trim().split('\n')
  const result = JSON.parse(lines.at(-1)!) as { statusCode: number; headers: Record<string, string>; body: string }
  t.equal(result.statusCode, 200)
  t.equal(result.headers['access-control-allow-origin'], ORIGIN)
  t.type(JSON.parse(result.body).data.startChatResult.ParticipantToken, 'string')
  t.equal(sim.requests.length, 1, 'Connect was called once, over HTTP')
  t.same(sm.requests.map((r) => r.secretId), ['prod/chat/resume-token'], 'the secret was read once, at init')
  t.match(stdout, /"service":\{"version":"\d+\.\d+\.\d+"[^\n]*"msg":"connect-chat-gateway starting \(Lambda\)"/, 'the start-up line names the version from build-info.json')
})
