import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { after, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { App } from 'aws-cdk-lib'
import { Template } from 'aws-cdk-lib/assertions'
import { addGatewayStack } from '../lib/app.js'
import { DeployConfigError, parseLambdaConfig } from '../lib/config.js'
import { LAMBDA_WIDGETS_PATH, TABLE_ACTIONS } from '../lib/lambda-stack.js'
import { actionsOf, LAMBDA_FIXTURE, LAMBDA_SAMPLE, only, resourcesOf, SAMPLE, statementsOf, synth, synthLambda } from './helper.js'

// `-c mode=lambda`: one Lambda function behind an HTTP API, its shared state in DynamoDB.

type Properties = Record<string, any>
const props = (template: ReturnType<typeof synth>, type: string): Properties => only(template, type)[1].Properties as Properties
const functionOf = (template: ReturnType<typeof synth>) => props(template, 'AWS::Lambda::Function')
const roleOf = (template: ReturnType<typeof synth>) => (functionOf(template).Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0]

const RUNBOOK = readFileSync(fileURLToPath(new URL('../../../docs/runbook.md', import.meta.url)), 'utf8')
const anchors = new Set(RUNBOOK.split(/^## /m).slice(1).map((section) =>
  section.slice(0, section.indexOf('\n')).trim().toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')))

function refusal (context: Record<string, unknown>): string {
  try { parseLambdaConfig({ ...LAMBDA_SAMPLE, ...context }) } catch (err) {
    assert.ok(err instanceof DeployConfigError, String(err))
    return err.message
  }
  assert.fail('no error')
}

describe('the serverless stack with the sample configuration', () => {
  const template = synthLambda()
  const [tableId] = only(template, 'AWS::DynamoDB::Table')

  it('is a function, an HTTP API, a table and their operations; no network, load balancer, Redis or WAF', () => {
    for (const type of ['AWS::Lambda::Function', 'AWS::ApiGatewayV2::Api', 'AWS::ApiGatewayV2::Stage', 'AWS::DynamoDB::Table', 'AWS::CloudWatch::Dashboard', 'AWS::SNS::Topic']) {
      template.resourceCountIs(type, 1)
    }
    for (const type of ['AWS::EC2::VPC', 'AWS::ElasticLoadBalancingV2::LoadBalancer', 'AWS::ElastiCache::ReplicationGroup', 'AWS::WAFv2::WebACL', 'AWS::ECS::Service']) {
      template.resourceCountIs(type, 0)
    }
  })

  it('runs the bundle on Node 22, arm64, handler index.handler, its timeout above the chat-start deadline', () => {
    const fn = functionOf(template)
    assert.equal(fn.Runtime, 'nodejs22.x')
    assert.deepEqual(fn.Architectures, ['arm64'])
    assert.equal(fn.Handler, 'index.handler')
    assert.equal(fn.MemorySize, 512)
    assert.equal(fn.Timeout, 15, 'CHAT_START_TIMEOUT_MS (10 s) and 5 s to answer')
    assert.equal(fn.ReservedConcurrentExecutions, undefined, 'no reservation unless asked')
    assert.match(fn.Code.S3Key, /^[0-9a-f]{64}\.zip$/, 'a file asset, by content hash')
  })

  it('configures the service for DynamoDB state and the Connect target, with no proxy trust, Redis, port or region of its own', () => {
    const env = functionOf(template).Environment.Variables as Properties
    assert.equal(env.STATE_STORE, 'dynamodb')
    assert.deepEqual(env.STATE_TABLE, { Ref: tableId })
    assert.equal(env.NODE_ENV, 'production')
    assert.equal(env.CONNECT_INSTANCE_ID, SAMPLE.instanceId)
    assert.equal(env.CONNECT_CONTACT_FLOW_ID, SAMPLE.contactFlowId)
    assert.equal(env.ALLOWED_ORIGINS, SAMPLE.allowedOrigins)
    assert.equal(env.ALLOWED_ATTRIBUTES, SAMPLE.allowedAttributes)
    // AWS_REGION is Lambda's own: setting it fails the deployment.
    for (const name of ['TRUST_PROXY', 'REDIS_URL', 'PORT', 'METRICS_PORT', 'AWS_REGION', 'RESUME_TOKEN_SECRET', 'CUSTOMER_JWT_SECRET']) assert.equal(env[name], undefined, name)
  })

  it('names each secret in SECRET_IDS, never its value, and lets the function read exactly those', () => {
    const env = functionOf(template).Environment.Variables as Properties
    const [secretId] = only(template, 'AWS::SecretsManager::Secret')
    const joined = env.SECRET_IDS['Fn::Join'][1] as unknown[]
    assert.deepEqual(joined, ['{"RESUME_TOKEN_SECRET":"', { Ref: secretId }, '"}'])
    const readable = statementsOf(template, roleOf(template)).filter((s) => actionsOf(s).some((a) => a.startsWith('secretsmanager:')))
    assert.deepEqual(readable.flatMap(resourcesOf), [{ Ref: secretId }])
    for (const s of readable) assert.deepEqual([...actionsOf(s)].sort(), ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'])
  })

  it('keeps state in an on-demand table keyed by pk with TTL on ttl, gone with the stack', () => {
    const table = props(template, 'AWS::DynamoDB::Table')
    assert.deepEqual(table.KeySchema, [{ AttributeName: 'pk', KeyType: 'HASH' }])
    assert.deepEqual(table.AttributeDefinitions, [{ AttributeName: 'pk', AttributeType: 'S' }])
    assert.deepEqual(table.TimeToLiveSpecification, { AttributeName: 'ttl', Enabled: true })
    assert.equal(table.BillingMode, 'PAY_PER_REQUEST')
    assert.equal((template.toJSON().Resources[tableId] as { DeletionPolicy?: string }).DeletionPolicy, 'Delete')
  })

  it('lets the function use only item actions, on the table\'s ARN only', () => {
    const statements = statementsOf(template, roleOf(template)).filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:')))
    assert.equal(statements.length, 1)
    assert.deepEqual([...actionsOf(statements[0]!)].sort(), [...TABLE_ACTIONS].sort())
    assert.ok(actionsOf(statements[0]!).every((a) => !a.includes('*')), 'no wildcard action')
    assert.deepEqual(resourcesOf(statements[0]!), [{ 'Fn::GetAtt': [tableId, 'Arn'] }], 'the table itself, no index, no other table')
    for (const s of statementsOf(template, roleOf(template))) assert.ok(!resourcesOf(s).includes('*'), `${JSON.stringify(s.Action)} on a named resource`)
  })

  it('has the same Connect permissions as the Fargate task, statement for statement', () => {
    const connect = (t: ReturnType<typeof synth>, roleId: string) => statementsOf(t, roleId).filter((s) => actionsOf(s).some((a) => a.startsWith('connect:')))
    const fargate = synth()
    const taskRoleId = (props(fargate, 'AWS::ECS::TaskDefinition').TaskRoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0]
    assert.equal(connect(template, roleOf(template)).length, 3)
    assert.deepEqual(connect(template, roleOf(template)), connect(fargate, taskRoleId))
  })

  it('routes only the public paths to the function, as payload 2.0; no catch-all', () => {
    const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map((r) => r.Properties.RouteKey as string).sort()
    assert.deepEqual(routes, ['GET /chat/{proxy+}', 'GET /health/live', 'GET /health/ready', 'OPTIONS /chat/{proxy+}', 'POST /chat/{proxy+}'])
    const integration = props(template, 'AWS::ApiGatewayV2::Integration')
    assert.equal(integration.IntegrationType, 'AWS_PROXY')
    assert.equal(integration.PayloadFormatVersion, '2.0')
    assert.deepEqual(integration.IntegrationUri, { 'Fn::GetAtt': [only(template, 'AWS::Lambda::Function')[0], 'Arn'] })
    assert.ok(integration.TimeoutInMillis > functionOf(template).Timeout * 1000, 'API Gateway waits out the function')
    assert.equal(props(template, 'AWS::ApiGatewayV2::Api').CorsConfiguration, undefined, 'preflights reach the service\'s origin policy')
  })

  it('throttles the stage: 50 requests/s steady, bursts of 100', () => {
    const stage = props(template, 'AWS::ApiGatewayV2::Stage')
    assert.equal(stage.StageName, '$default')
    assert.equal(stage.AutoDeploy, true)
    assert.deepEqual(stage.DefaultRouteSettings, { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 })
  })

  it('without a domain: the API\'s own endpoint, no domain, mapping or record', () => {
    for (const type of ['AWS::ApiGatewayV2::DomainName', 'AWS::ApiGatewayV2::ApiMapping', 'AWS::Route53::RecordSet']) template.resourceCountIs(type, 0)
    assert.notEqual(props(template, 'AWS::ApiGatewayV2::Api').DisableExecuteApiEndpoint, true)
  })

  it('alarms on function errors, throttles, p99 duration near the timeout, table throttles, the 5xx rate and the logged refusals, each with its runbook entry', () => {
    const alarms = Object.entries(template.findResources('AWS::CloudWatch::Alarm')) as Array<[string, { Properties: Properties }]>
    const byId = (prefix: string) => alarms.find(([id]) => id.startsWith(prefix))?.[1].Properties
    assert.deepEqual(
      alarms.map(([id]) => id.replace(/[0-9A-F]{8}$/, '')).sort(),
      ['Api5xxRateAlarm', 'ChatCapacityReservedAlarm', 'ChatQuotaReachedAlarm', 'FunctionDurationHighAlarm', 'FunctionErrorsAlarm', 'FunctionThrottlesAlarm',
        'StateTableThrottledAlarm', 'UpstreamErrorsAlarm', 'UpstreamThrottledAlarm'])
    assert.equal(byId('FunctionErrorsAlarm')!.MetricName, 'Errors')
    assert.equal(byId('FunctionThrottlesAlarm')!.MetricName, 'Throttles')
    const duration = byId('FunctionDurationHighAlarm')!
    assert.equal(duration.MetricName, 'Duration')
    assert.equal(duration.ExtendedStatistic, 'p99')
    assert.equal(duration.Threshold, 12_000, '80% of the 15 s timeout')
    const throttled = JSON.stringify(byId('StateTableThrottledAlarm')!.Metrics)
    for (const name of ['ReadThrottleEvents', 'WriteThrottleEvents']) assert.ok(throttled.includes(name))
    assert.ok(JSON.stringify(byId('Api5xxRateAlarm')!.Metrics).includes('"5xx"'))
    for (const [id, alarm] of alarms) {
      const [, anchor] = /Runbook: docs\/runbook\.md#([a-z0-9-]+)$/.exec(String(alarm.Properties.AlarmDescription)) ?? []
      assert.ok(anchor && anchors.has(anchor), `${id} links an entry of docs/runbook.md (#${anchor})`)
      assert.equal(alarm.Properties.AlarmActions.length, 1, `${id} notifies the topic`)
    }
  })

  it('counts the logged refusals and upstream failures from the function\'s log group', () => {
    const filters = Object.values(template.findResources('AWS::Logs::MetricFilter')).map((f) => f.Properties as Properties)
    const [logGroupId] = only(template, 'AWS::Logs::LogGroup')
    assert.deepEqual(filters.map((f) => f.MetricTransformations[0].MetricName).sort(), ['ChatCapacityReserved', 'ChatQuotaReached', 'UpstreamErrors', 'UpstreamThrottled'])
    for (const f of filters) assert.deepEqual(f.LogGroupName, { Ref: logGroupId })
    assert.deepEqual(functionOf(template).LoggingConfig, { LogFormat: 'Text', LogGroup: { Ref: logGroupId } })
  })

  it('draws a dashboard of the API, the function, the table and every alarm', () => {
    const body = JSON.stringify(props(template, 'AWS::CloudWatch::Dashboard').DashboardBody)
    for (const metric of ['\\"Count\\"', '\\"5xx\\"', 'Invocations', 'Throttles', 'ConcurrentExecutions', 'Duration', 'ConsumedWriteCapacityUnits', 'WriteThrottleEvents', 'ChatQuotaReached']) {
      assert.ok(body.includes(metric), `the dashboard reads ${metric}`)
    }
    for (const id of Object.keys(template.findResources('AWS::CloudWatch::Alarm'))) assert.ok(body.includes(id), `the alarm widget shows ${id}`)
  })
})

describe('serverless variants', () => {
  const DOMAIN = { certificateArn: 'arn:aws:acm:eu-west-2:111111111111:certificate/00000000-0000-4000-8000-000000000003', domainName: 'chat.example.com', hostedZoneId: 'Z0123456789ABCDEFGHIJ', hostedZoneName: 'example.com' }

  it('with a domain: the API serves it with the certificate, TLS 1.2, an alias record points at it, the default endpoint is off', () => {
    const template = synthLambda(DOMAIN)
    const [domainId, domain] = only(template, 'AWS::ApiGatewayV2::DomainName')
    assert.equal(domain.Properties.DomainName, 'chat.example.com')
    assert.deepEqual(domain.Properties.DomainNameConfigurations, [{ CertificateArn: DOMAIN.certificateArn, EndpointType: 'REGIONAL', SecurityPolicy: 'TLS_1_2' }])
    assert.deepEqual(props(template, 'AWS::ApiGatewayV2::ApiMapping').DomainName, { Ref: domainId })
    const record = props(template, 'AWS::Route53::RecordSet')
    assert.equal(record.Type, 'A')
    assert.equal(record.HostedZoneId, DOMAIN.hostedZoneId)
    assert.deepEqual(record.AliasTarget.DNSName, { 'Fn::GetAtt': [domainId, 'RegionalDomainName'] })
    assert.equal(props(template, 'AWS::ApiGatewayV2::Api').DisableExecuteApiEndpoint, true)
  })

  it('memory, timeout, reserved concurrency and throttling are settings', () => {
    const template = synthLambda({ lambdaMemoryMb: '1024', lambdaTimeoutSeconds: '20', lambdaReservedConcurrency: '25', apiRateLimit: '10', apiBurstLimit: '20' })
    const fn = functionOf(template)
    assert.equal(fn.MemorySize, 1024)
    assert.equal(fn.Timeout, 20)
    assert.equal(fn.ReservedConcurrentExecutions, 25)
    assert.deepEqual(props(template, 'AWS::ApiGatewayV2::Stage').DefaultRouteSettings, { ThrottlingRateLimit: 10, ThrottlingBurstLimit: 20 })
    assert.equal(Object.values(template.findResources('AWS::CloudWatch::Alarm')).find((a) => a.Properties.MetricName === 'Duration')!.Properties.Threshold, 16_000)
  })

  it('a longer CHAT_START_TIMEOUT_MS lengthens the default timeout', () => {
    assert.equal(functionOf(synthLambda({ environment: { CHAT_START_TIMEOUT_MS: '20000' } })).Timeout, 25)
  })

  it('a widgets file travels as a layer read at WIDGETS_FILE; its secrets are named, its flows allowed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ccg-lambda-widgets-'))
    after(() => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, 'widgets.json')
    writeFileSync(file, JSON.stringify({ widgets: [{ id: 'sales', contactFlowId: '00000000-0000-4000-8000-0000000000f1', customerToken: { secretEnv: 'SALES_JWT_SECRET' } }] }))
    const outdir = join(dir, 'cdk.out')
    const app = new App({ outdir, context: { ...LAMBDA_SAMPLE, widgetsFile: file, widgetSecrets: '{"SALES_JWT_SECRET":"prod/chat/sales-jwt"}' } })
    const template = Template.fromStack(addGatewayStack(app))
    const fn = functionOf(template)
    assert.equal(fn.Environment.Variables.WIDGETS_FILE, LAMBDA_WIDGETS_PATH)
    assert.deepEqual(fn.Layers, [{ Ref: only(template, 'AWS::Lambda::LayerVersion')[0] }])
    // The layer's asset holds the file itself, at the root: Lambda unpacks it into /opt.
    const layerKey = String(props(template, 'AWS::Lambda::LayerVersion').Content.S3Key).replace(/\.zip$/, '')
    assert.deepEqual(readdirSync(join(outdir, `asset.${layerKey}`)), ['widgets.json'])
    assert.deepEqual(JSON.parse(readFileSync(join(outdir, `asset.${layerKey}`, 'widgets.json'), 'utf8')), JSON.parse(readFileSync(file, 'utf8')))
    assert.ok(JSON.stringify(fn.Environment.Variables.SECRET_IDS).includes('\\"SALES_JWT_SECRET\\":\\"prod/chat/sales-jwt\\"'))
    const statements = statementsOf(template, roleOf(template))
    assert.ok(statements.some((s) => JSON.stringify(s.Resource).includes('secret:prod/chat/sales-jwt-??????')), 'the widget secret is readable')
    assert.ok(statements.some((s) => JSON.stringify(s.Resource).includes('contact-flow/00000000-0000-4000-8000-0000000000f1')), 'the widget flow may start chats')
  })
})

describe('serverless settings checked at synth time', () => {
  it('a missing bundle names npm run build:lambda', () => {
    assert.match(refusal({ lambdaAsset: join(tmpdir(), 'no-such-bundle') }), /lambdaAsset: .*no-such-bundle holds no index\.mjs: run `npm run build:lambda`/)
  })

  it('Fargate settings are refused, not ignored; a certificate needs a domain and a domain a certificate', () => {
    assert.match(refusal({ waf: 'true', desiredCount: '3' }), /desiredCount: only applies with mode=fargate[\s\S]*waf: only applies with mode=fargate/)
    assert.match(refusal({ certificateArn: SAMPLE.certificateArn }), /certificateArn: only applies with domainName/)
    assert.match(refusal({ domainName: 'chat.example.com', hostedZoneId: 'Z0123456789ABCDEFGHIJ', hostedZoneName: 'example.com' }), /certificateArn: is required with domainName/)
  })

  it('a timeout that would cut a chat start short, or past what the HTTP API waits, is refused', () => {
    assert.match(refusal({ lambdaTimeoutSeconds: '10' }), /lambdaTimeoutSeconds: 10 s would end a chat start before its own deadline/)
    assert.match(refusal({ lambdaTimeoutSeconds: '30' }), /lambdaTimeoutSeconds: "30" is not a whole number from 1 to 29/)
    assert.match(refusal({ environment: { CHAT_START_TIMEOUT_MS: '29000' } }), /lambdaTimeoutSeconds: 29 s would end a chat start/)
  })

  it('an unknown mode is refused; serverless settings in the Fargate mode too', () => {
    assert.throws(() => synth({ mode: 'ec2' }), /mode: "ec2" is neither fargate nor lambda/)
    assert.throws(() => synth({ apiRateLimit: '5' }), /apiRateLimit: only applies with mode=lambda/)
  })
})

describe('cdk synth -c mode=lambda, offline', () => {
  const HERE = fileURLToPath(new URL('..', import.meta.url))
  const dirs: string[] = []
  after(async () => { for (const dir of dirs) await rm(dir, { recursive: true, force: true }) })

  it('prints the template with no credentials, network or Docker, and stages the bundle as it is', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ccg-cdk-lambda-'))
    dirs.push(dir)
    // A `docker` first on PATH that fails loudly: staging the bundle must not need one.
    await writeFile(join(dir, 'docker'), '#!/bin/sh\necho "docker was called" >&2\nexit 1\n')
    await chmod(join(dir, 'docker'), 0o755)
    const env: NodeJS.ProcessEnv = { PATH: [dir, dirname(process.execPath), process.env.PATH].join(delimiter), HOME: dir, CDK_DISABLE_CLI_TELEMETRY: 'true', AWS_EC2_METADATA_DISABLED: 'true' }
    const context = Object.entries({ ...SAMPLE, mode: 'lambda', lambdaAsset: LAMBDA_FIXTURE, certificateArn: '' }).flatMap(([k, v]) => ['-c', `${k}=${v}`])
    const outdir = join(dir, 'cdk.out')
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [join(HERE, 'node_modules/aws-cdk/bin/cdk'), 'synth', '--no-notices', '--output', outdir, ...context],
        { cwd: HERE, env, maxBuffer: 32 * 1024 * 1024, timeout: 240_000 },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }))
    })
    assert.equal(code, 0, stderr)
    assert.doesNotMatch(stderr, /docker was called/)
    assert.match(stdout, /Type: AWS::Lambda::Function/)
    assert.match(stdout, /Type: AWS::ApiGatewayV2::Api/)
    const staged = (await readdir(outdir)).filter((name) => name.startsWith('asset.'))
    assert.equal(staged.length, 1)
    assert.equal(await readFile(join(outdir, staged[0]!, 'index.mjs'), 'utf8'), await readFile(join(LAMBDA_FIXTURE, 'index.mjs'), 'utf8'))
    await stat(join(outdir, 'ConnectChatGatewayServerless.template.json'))
  })
})
