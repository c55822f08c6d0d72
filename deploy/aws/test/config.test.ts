import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { after, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { DeployConfigError, parseConfig } from '../lib/config.js'
import { SAMPLE, synth } from './helper.js'

const HERE = fileURLToPath(new URL('..', import.meta.url))

/** Runs `fn` and returns the DeployConfigError's message (fails if there is none). */
function refusal (fn: () => unknown): string {
  try { fn() } catch (err) {
    assert.ok(err instanceof DeployConfigError, `a DeployConfigError, got ${String(err)}`)
    return err.message
  }
  assert.fail('no error')
}

const without = (key: keyof typeof SAMPLE) => Object.fromEntries(Object.entries(SAMPLE).filter(([k]) => k !== key))

describe('configuration checked at synth time', () => {
  it('a missing instance id fails synthesis, naming instanceId', () => {
    const message = refusal(() => synth({ instanceId: undefined }))
    assert.match(message, /instanceId: is required/)
    assert.doesNotMatch(message, /certificateArn/, 'only what is wrong is named')
  })

  it('a missing certificate fails synthesis, naming certificateArn', () => {
    assert.match(refusal(() => synth({ certificateArn: undefined })), /certificateArn: is required/)
  })

  it('every missing value is named in one message', () => {
    const message = refusal(() => parseConfig({}))
    for (const key of ['region', 'instanceId', 'contactFlowId', 'certificateArn']) assert.match(message, new RegExp(`^  ${key}: is required`, 'm'))
  })

  it('malformed values are named with what was expected', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ instanceId: 'arn:aws:connect:eu-west-2:1:instance/x' }, /instanceId: "arn:aws:connect.*" is not valid/],
      [{ contactFlowId: 'flow' }, /contactFlowId: "flow" is not valid/],
      [{ region: 'europe' }, /region: "europe" is not valid/],
      [{ certificateArn: 'arn:aws:acm:us-east-1:111111111111:certificate/00000000-0000-4000-8000-000000000003' }, /certificateArn: is in us-east-1, but a load balancer in eu-west-2/],
      [{ allowedOrigins: 'https://www.example.com/path' }, /allowedOrigins: "https:\/\/www.example.com\/path" is not an exact origin/],
      [{ allowedAttributes: 'topic,bad key' }, /allowedAttributes: "bad key"/],
      [{ desiredCount: 1 }, /desiredCount: 1 is not a whole number from 2/],
      [{ desiredCount: 4, maxCount: 3 }, /maxCount: 3 is below desiredCount 4/],
      [{ waf: 'yes' }, /waf: "yes" is not true or false/],
      [{ logRetentionDays: 10 }, /logRetentionDays: 10 is not one CloudWatch accepts/],
      [{ cacheEngine: 'memcached' }, /cacheEngine: "memcached"/],
      [{ requireCustomerToken: 'true' }, /requireCustomerToken: needs customerJwtSecret/],
      [{ customerJwtSecret: 'my-secret' }, /customerJwtSecret: must be "generate" or a complete secret ARN/],
      [{ vpcId: 'vpc-0123456789abcdef0' }, /vpcCidr: is required with vpcId[\s\S]*availabilityZones: two or more/],
      [{ privateSubnetIds: 'subnet-0bbbbbbbbbbbbbbb1' }, /privateSubnetIds: only applies with vpcId/],
      [{ environment: { RESUME_TOKEN_SECRET: 'x'.repeat(40) } }, /RESUME_TOKEN_SECRET is set by this app/],
      [{ environment: { SALES_JWT_SECRET: 'x'.repeat(40) } }, /SALES_JWT_SECRET looks like a secret/],
      [{ environment: { AWS_SECRET_ACCESS_KEY: 'x' } }, /AWS_SECRET_ACCESS_KEY looks like a secret/],
      [{ environment: '{not json' }, /environment: must be an object/]
    ]
    for (const [change, expected] of cases) assert.match(refusal(() => parseConfig({ ...SAMPLE, ...change })), expected, JSON.stringify(change))
  })

  it('values from -c arrive as strings and are converted; lists accept arrays too', () => {
    const wildcard = parseConfig({ ...SAMPLE, allowedOrigins: 'https://*.example.com,https://example.com' })
    assert.deepEqual(wildcard.allowedOrigins, ['https://*.example.com', 'https://example.com'], 'subdomain wildcards pass through')
    assert.deepEqual(parseConfig({ ...SAMPLE, allowedOrigins: 'none' }).allowedOrigins, [], 'none: no browser')
    const config = parseConfig({ ...SAMPLE, desiredCount: '3', waf: 'false', allowedOrigins: ['https://a.example', 'https://b.example'] })
    assert.equal(config.desiredCount, 3)
    assert.equal(config.waf, false)
    assert.deepEqual(config.allowedOrigins, ['https://a.example', 'https://b.example'])
    assert.equal(parseConfig(without('allowedAttributes')).allowedAttributes.length, 0)
  })
})

describe('the cdk command line, offline', () => {
  const dirs: string[] = []
  after(async () => { for (const dir of dirs) await rm(dir, { recursive: true, force: true }) })

  /**
   * `cdk synth` with no AWS credentials or configuration, instance metadata off, and a `docker`
   * first on PATH that only records that it was called.
   */
  async function cdk (args: string[]) {
    const dir = await mkdtemp(join(tmpdir(), 'ccg-cdk-cli-'))
    dirs.push(dir)
    const marker = join(dir, 'docker-was-called')
    await writeFile(join(dir, 'docker'), `#!/bin/sh\necho "$@" >> '${marker}'\nexit 1\n`)
    await chmod(join(dir, 'docker'), 0o755)
    const env: NodeJS.ProcessEnv = {}
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_') && !k.startsWith('CDK_')) env[k] = v
    Object.assign(env, {
      AWS_EC2_METADATA_DISABLED: 'true',
      // Nothing leaves the machine from a test run.
      CDK_DISABLE_CLI_TELEMETRY: 'true',
      AWS_CONFIG_FILE: join(dir, 'no-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-credentials'),
      PATH: [dir, dirname(process.execPath), join(HERE, 'node_modules/.bin'), env.PATH].join(delimiter)
    })
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [join(HERE, 'node_modules/aws-cdk/bin/cdk'), 'synth', '--no-notices', '--output', join(dir, 'cdk.out'), ...args],
        { cwd: HERE, env, maxBuffer: 32 * 1024 * 1024, timeout: 240_000 },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }))
    })
    const dockerCalled = await stat(marker).then(() => readFile(marker, 'utf8'), () => undefined)
    return { ...result, dockerCalled, outdir: join(dir, 'cdk.out') }
  }
  const context = (values: Record<string, string>) => Object.entries(values).flatMap(([k, v]) => ['-c', `${k}=${v}`])

  it('prints the template without credentials, network lookups or Docker', async () => {
    const { code, stdout, stderr, dockerCalled, outdir } = await cdk(context(SAMPLE))
    assert.equal(code, 0, stderr)
    assert.match(stdout, /Type: AWS::ECS::Service/)
    assert.match(stdout, /Type: AWS::ElastiCache::ReplicationGroup/)
    assert.equal(dockerCalled, undefined, 'the image is built by cdk deploy, not by synth')
    const assets = JSON.parse(await readFile(join(outdir, 'ConnectChatGateway.assets.json'), 'utf8')) as { dockerImages: Record<string, { source: { directory: string; dockerBuildArgs?: Record<string, string> } }> }
    const [image] = Object.values(assets.dockerImages)
    const head = await new Promise<string>((resolve) => execFile('git', ['rev-parse', 'HEAD'], { cwd: HERE }, (error, stdout) => resolve(error ? 'unknown' : stdout.trim())))
    assert.deepEqual(image!.source.dockerBuildArgs, { SOURCE_COMMIT: head }, 'the image is built with the commit it comes from')
    const staged = join(outdir, image!.source.directory)
    await stat(join(staged, 'Dockerfile'))
    await stat(join(staged, 'src'))
    await assert.rejects(stat(join(staged, 'deploy')), 'the deploy folder (and its node_modules) stays out of the image')
    await assert.rejects(stat(join(staged, 'node_modules')), 'node_modules stay out of the image')
  })

  it('a missing value stops synthesis with exit 1 and a message naming it', async () => {
    const { code, stdout, stderr } = await cdk(context(without('instanceId')))
    assert.notEqual(code, 0)
    assert.match(stderr, /instanceId: is required/)
    assert.doesNotMatch(stderr, /at .*\.ts:\d+/, 'a message, not a stack trace')
    assert.doesNotMatch(stdout, /Resources:/)
  })
})
