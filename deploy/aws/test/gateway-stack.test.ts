import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Match } from 'aws-cdk-lib/assertions'
import { contentLengthAbove } from '../lib/gateway-stack.js'
import { actionsOf, container, env, only, resourcesOf, SAMPLE, statementsOf, synth } from './helper.js'

/** A CloudFormation value as text: Fn::Join flattened, Ref and GetAtt as ${…}. */
function text (value: unknown): string {
  if (typeof value === 'string') return value
  if (value && typeof value === 'object') {
    const v = value as Record<string, unknown>
    if (Array.isArray(v['Fn::Join'])) {
      const [sep, parts] = v['Fn::Join'] as [string, unknown[]]
      return parts.map(text).join(sep)
    }
    if (typeof v.Ref === 'string') return `\${${v.Ref}}`
    if (Array.isArray(v['Fn::GetAtt'])) return `\${${(v['Fn::GetAtt'] as string[]).join('.')}}`
  }
  return JSON.stringify(value)
}

const SECRET_NAMES = ['RESUME_TOKEN_SECRET', 'REDIS_URL', 'CUSTOMER_JWT_SECRET']

describe('the stack with the sample configuration', () => {
  const template = synth({ customerJwtSecret: 'generate' })

  it('synthesises every part the gateway needs', () => {
    const expected: Record<string, number> = {
      'AWS::EC2::VPC': 1,
      'AWS::ECS::Cluster': 1,
      'AWS::ECS::Service': 1,
      'AWS::ECS::TaskDefinition': 1,
      'AWS::ElasticLoadBalancingV2::LoadBalancer': 1,
      'AWS::ElasticLoadBalancingV2::Listener': 2,
      'AWS::ElasticLoadBalancingV2::TargetGroup': 1,
      'AWS::ElastiCache::ReplicationGroup': 1,
      'AWS::ElastiCache::SubnetGroup': 1,
      'AWS::SecretsManager::Secret': 4,
      'AWS::WAFv2::WebACL': 1,
      'AWS::WAFv2::WebACLAssociation': 1,
      'AWS::Logs::LogGroup': 2,
      'AWS::Logs::MetricFilter': 3,
      'AWS::CloudWatch::Alarm': 9,
      'AWS::CloudWatch::Dashboard': 1,
      'AWS::SNS::Topic': 1,
      'AWS::ApplicationAutoScaling::ScalableTarget': 1,
      'AWS::ApplicationAutoScaling::ScalingPolicy': 2,
      'AWS::IAM::Role': 2
    }
    for (const [type, count] of Object.entries(expected)) template.resourceCountIs(type, count)
  })

  it('runs at least two Fargate tasks in two availability zones, with a circuit breaker that rolls back', () => {
    const [, service] = only(template, 'AWS::ECS::Service')
    const p = service.Properties as Record<string, any>
    assert.equal(p.LaunchType, 'FARGATE')
    assert.equal(p.DesiredCount, 2)
    assert.deepEqual(p.DeploymentConfiguration.DeploymentCircuitBreaker, { Enable: true, Rollback: true })
    const subnetIds = (p.NetworkConfiguration.AwsvpcConfiguration.Subnets as Array<{ Ref: string }>).map((s) => s.Ref)
    const subnets = template.findResources('AWS::EC2::Subnet')
    const zones = new Set(subnetIds.map((id) => JSON.stringify(subnets[id]?.Properties.AvailabilityZone)))
    assert.equal(zones.size, 2, 'the service subnets lie in two different zones')
    assert.equal(p.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp, 'DISABLED')
  })

  it('builds the image from the repository Dockerfile at deploy time, and keeps the image\'s liveness check', () => {
    const c = container(template)
    assert.match(text((c as unknown as { Image: unknown }).Image), /container-assets.*:[0-9a-f]{64}/, 'an image asset, tagged by its content hash')
    assert.ok(c.HealthCheck?.Command.join(' ').includes('/health/live'))
  })

  it('answers HTTPS only with the configured certificate; HTTP redirects to HTTPS', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 443, Protocol: 'HTTPS', Certificates: [{ CertificateArn: SAMPLE.certificateArn }]
    })
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 80, Protocol: 'HTTP', DefaultActions: [{ Type: 'redirect', RedirectConfig: Match.objectLike({ Protocol: 'HTTPS', Port: '443' }) }]
    })
    const listeners = Object.values(template.findResources('AWS::ElasticLoadBalancingV2::Listener'))
    assert.ok(listeners.every((l) => l.Properties.Protocol === 'HTTPS' || l.Properties.DefaultActions[0].Type === 'redirect'), 'nothing is served over plain HTTP')
  })

  it('keeps the load balancer\'s idle timeout below the service\'s 72 s keep-alive timeout', () => {
    const [, alb] = only(template, 'AWS::ElasticLoadBalancingV2::LoadBalancer')
    const attributes = alb.Properties.LoadBalancerAttributes as Array<{ Key: string; Value: string }>
    const idle = Number(attributes.find((a) => a.Key === 'idle_timeout.timeout_seconds')?.Value)
    assert.ok(idle > 0 && idle < 72, `idle timeout ${idle} s`)
  })

  it('health-checks the targets on /health/ready', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', { HealthCheckPath: '/health/ready', Port: 3000 })
  })

  it('trusts X-Forwarded-For from the VPC\'s own range only', () => {
    const [vpcId] = only(template, 'AWS::EC2::VPC')
    assert.deepEqual(env(template).TRUST_PROXY, { 'Fn::GetAtt': [vpcId, 'CidrBlock'] })
  })

  it('passes the Connect target and browser policy as plain settings', () => {
    const e = env(template)
    assert.equal(e.NODE_ENV, 'production')
    assert.equal(e.AWS_REGION, SAMPLE.region)
    assert.equal(e.CONNECT_INSTANCE_ID, SAMPLE.instanceId)
    assert.equal(e.CONNECT_CONTACT_FLOW_ID, SAMPLE.contactFlowId)
    assert.equal(e.ALLOWED_ORIGINS, SAMPLE.allowedOrigins)
    const mobileOnly = env(synth({ allowedOrigins: '' }))
    assert.equal(mobileOnly.ALLOWED_ORIGINS, 'none', 'no origins configured: none, so production start-up does not stop')
    assert.equal(e.ALLOWED_ATTRIBUTES, SAMPLE.allowedAttributes)
  })

  it('injects every secret from Secrets Manager, none as a plain environment value', () => {
    const c = container(template)
    const plain = (c.Environment ?? []).map((e) => e.Name)
    for (const name of SECRET_NAMES) assert.ok(!plain.includes(name), `${name} is not a plain environment value`)
    for (const { Name, Value } of c.Environment ?? []) {
      assert.doesNotMatch(text(Value), /resolve:secretsmanager|rediss?:\/\//, `${Name} carries no secret`)
    }
    const secrets = template.findResources('AWS::SecretsManager::Secret')
    const injected = Object.fromEntries((c.Secrets ?? []).map((s) => [s.Name, (s.ValueFrom as { Ref: string }).Ref]))
    assert.deepEqual(Object.keys(injected).sort(), [...SECRET_NAMES].sort())
    for (const [name, ref] of Object.entries(injected)) assert.ok(secrets[ref], `${name} comes from the stack's secret ${ref}`)
    // Generated by Secrets Manager: the template holds no value of its own.
    for (const id of [injected.RESUME_TOKEN_SECRET!, injected.CUSTOMER_JWT_SECRET!]) {
      assert.ok(secrets[id]!.Properties.GenerateSecretString, `${id} is generated`)
      assert.equal(secrets[id]!.Properties.SecretString, undefined)
    }
  })

  it('lets the task role start chats on this instance\'s flow, end and describe only its contacts, and read its queues and hours', () => {
    const [, taskDefinition] = only(template, 'AWS::ECS::TaskDefinition')
    const roleId = (taskDefinition.Properties.TaskRoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0]
    // Besides Connect, the metrics collector writes to its own log group (observability.test.ts).
    const statements = statementsOf(template, roleId).filter((s) => actionsOf(s).some((a) => a.startsWith('connect:')))
    const instance = `arn:\${AWS::Partition}:connect:${SAMPLE.region}:\${AWS::AccountId}:instance/${SAMPLE.instanceId}`
    assert.ok(statements.every((s) => s.Effect === 'Allow'))
    const grants = Object.fromEntries(statements.map((s) => [[...actionsOf(s)].sort().join(' '), resourcesOf(s).map(text).sort()]))
    assert.deepEqual(grants, {
      'connect:StartChatContact': [`${instance}/contact-flow/${SAMPLE.contactFlowId}`, `${instance}/contact/*`],
      'connect:DescribeContact connect:StopContact': [`${instance}/contact/*`],
      'connect:DescribeQueue connect:GetCurrentMetricData connect:GetEffectiveHoursOfOperations': [`${instance}/operating-hours/*`, `${instance}/queue/*`]
    }, 'the only actions the tasks may take, each on its own resources')
    const [, role] = Object.entries(template.findResources('AWS::IAM::Role')).find(([id]) => id === roleId)!
    assert.equal(role.Properties.ManagedPolicyArns, undefined, 'no managed policy widens it')
  })

  it('lets the execution role read only the injected secrets', () => {
    const [, taskDefinition] = only(template, 'AWS::ECS::TaskDefinition')
    const roleId = (taskDefinition.Properties.ExecutionRoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0]
    const injected = (container(template).Secrets ?? []).map((s) => (s.ValueFrom as { Ref: string }).Ref).sort()
    const secretStatements = statementsOf(template, roleId).filter((s) => actionsOf(s).some((a) => a.startsWith('secretsmanager:')))
    assert.ok(secretStatements.length > 0)
    const readable = secretStatements.flatMap(resourcesOf).map((r) => (r as { Ref?: string }).Ref ?? text(r)).sort()
    assert.deepEqual(readable, injected, 'exactly the injected secrets, nothing broader')
    for (const s of secretStatements) assert.deepEqual([...actionsOf(s)].sort(), ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'])
    const [authTokenId] = Object.entries(template.findResources('AWS::SecretsManager::Secret'))
      .find(([, s]) => String(s.Properties.Description).includes('auth token'))!
    assert.ok(!readable.includes(authTokenId), 'the bare Redis auth token is not readable by the tasks')
  })

  it('runs Redis with encryption in transit required and an auth token from Secrets Manager', () => {
    const [, redis] = only(template, 'AWS::ElastiCache::ReplicationGroup')
    const p = redis.Properties
    assert.equal(p.TransitEncryptionEnabled, true)
    assert.equal(p.TransitEncryptionMode, 'required')
    assert.equal(p.AtRestEncryptionEnabled, true)
    assert.equal(p.MultiAZEnabled, true)
    assert.equal(p.AutomaticFailoverEnabled, true)
    assert.match(text(p.AuthToken), /^\{\{resolve:secretsmanager:\$\{RedisAuthToken[0-9A-F]+\}:SecretString:::\}\}$/)
  })

  it('gives the service a rediss:// URL holding the auth token and the primary endpoint', () => {
    const secrets = template.findResources('AWS::SecretsManager::Secret')
    const ref = (container(template).Secrets ?? []).find((s) => s.Name === 'REDIS_URL')!.ValueFrom as { Ref: string }
    const [redisId] = only(template, 'AWS::ElastiCache::ReplicationGroup')
    assert.equal(text(secrets[ref.Ref]!.Properties.SecretString),
      `rediss://:{{resolve:secretsmanager:\${${Object.keys(secrets).find((id) => id.startsWith('RedisAuthToken'))}}:SecretString:::}}` +
      `@\${${redisId}.PrimaryEndPoint.Address}:\${${redisId}.PrimaryEndPoint.Port}`)
  })

  it('lets only the load balancer reach the tasks, and only the tasks reach Redis', () => {
    const groups = template.findResources('AWS::EC2::SecurityGroup')
    const idOf = (prefix: string) => Object.keys(groups).find((id) => id.startsWith(prefix))!
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: { 'Fn::GetAtt': [idOf('ServiceSecurityGroup'), 'GroupId'] },
      SourceSecurityGroupId: { 'Fn::GetAtt': [idOf('LoadBalancerSecurityGroup'), 'GroupId'] },
      FromPort: 3000, ToPort: 3000
    })
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: { 'Fn::GetAtt': [idOf('RedisSecurityGroup'), 'GroupId'] },
      SourceSecurityGroupId: { 'Fn::GetAtt': [idOf('ServiceSecurityGroup'), 'GroupId'] },
      FromPort: 6379, ToPort: 6379
    })
    assert.equal(groups[idOf('ServiceSecurityGroup')]!.Properties.SecurityGroupIngress, undefined, 'no open ingress on the tasks')
    assert.equal(groups[idOf('RedisSecurityGroup')]!.Properties.SecurityGroupIngress, undefined, 'no open ingress on Redis')
  })

  it('puts a WAF web ACL on the load balancer: rate limit per IP, AWS common rules, the 16 KiB body limit', () => {
    const [aclId, acl] = only(template, 'AWS::WAFv2::WebACL')
    const rules = acl.Properties.Rules as Array<Record<string, any>>
    const rate = rules.find((r) => r.Statement.RateBasedStatement)
    assert.deepEqual(rate?.Statement.RateBasedStatement, { Limit: 300, AggregateKeyType: 'IP', EvaluationWindowSec: 300 })
    assert.deepEqual(rate?.Action, { Block: {} })
    const common = rules.find((r) => r.Statement.ManagedRuleGroupStatement?.Name === 'AWSManagedRulesCommonRuleSet')
    assert.equal(common?.Statement.ManagedRuleGroupStatement.VendorName, 'AWS')
    assert.deepEqual(common?.Statement.ManagedRuleGroupStatement.RuleActionOverrides,
      [{ Name: 'SizeRestrictions_BODY', ActionToUse: { Count: {} } }], 'its 8 KB body rule does not undercut the 16 KiB limit')
    const size = rules.find((r) => r.Statement.RegexMatchStatement)
    assert.deepEqual(size?.Statement.RegexMatchStatement.FieldToMatch, { SingleHeader: { Name: 'content-length' } })
    const pattern = new RegExp(size?.Statement.RegexMatchStatement.RegexString)
    assert.ok(!pattern.test('16384') && pattern.test('16385'), 'blocks declared bodies over 16 KiB, not at it')
    assert.deepEqual(size?.Action, { Block: {} })
    const [, association] = only(template, 'AWS::WAFv2::WebACLAssociation')
    const [albId] = only(template, 'AWS::ElasticLoadBalancingV2::LoadBalancer')
    assert.deepEqual(association.Properties, { ResourceArn: { Ref: albId }, WebACLArn: { 'Fn::GetAtt': [aclId, 'Arn'] } })
  })

  it('keeps the logs for a bounded time', () => {
    // The service's log group is kept (RETAIN); the metrics collector's is the other one.
    const logGroups = Object.entries(template.findResources('AWS::Logs::LogGroup'))
    for (const [, group] of logGroups) assert.equal(group.Properties.RetentionInDays, 30)
    const [logGroupId] = logGroups.find(([, g]) => g.DeletionPolicy === 'Retain')!
    const c = container(template) as unknown as { LogConfiguration: { LogDriver: string; Options: Record<string, unknown> } }
    assert.equal(c.LogConfiguration.LogDriver, 'awslogs')
    assert.deepEqual(c.LogConfiguration.Options['awslogs-group'], { Ref: logGroupId })
  })

  it('counts CHAT_QUOTA_REACHED, CHAT_CAPACITY_RESERVED and UPSTREAM_THROTTLED from the service\'s JSON log lines, and alarms on them', () => {
    for (const [code, metricName] of [['CHAT_QUOTA_REACHED', 'ChatQuotaReached'], ['CHAT_CAPACITY_RESERVED', 'ChatCapacityReserved'], ['UPSTREAM_THROTTLED', 'UpstreamThrottled']]) {
      template.hasResourceProperties('AWS::Logs::MetricFilter', {
        FilterPattern: `{ $.code = "${code}" }`,
        MetricTransformations: [Match.objectLike({ MetricName: metricName, MetricNamespace: 'ConnectChatGateway', MetricValue: '1' })]
      })
      template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: metricName, Namespace: 'ConnectChatGateway', Statistic: 'Sum' })
    }
  })

  it('alarms on the 5xx rate and on unhealthy hosts, and every alarm notifies the topic', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'))
    const fiveXx = alarms.find((a) => (a.Properties.Metrics as unknown[] | undefined)?.length)
    const expressions = (fiveXx?.Properties.Metrics as Array<{ Expression?: string; MetricStat?: { Metric: { MetricName: string } } }>)
    assert.ok(expressions.some((m) => m.Expression?.includes('target5xx')))
    assert.deepEqual(expressions.flatMap((m) => m.MetricStat ? [m.MetricStat.Metric.MetricName] : []).sort(),
      ['HTTPCode_ELB_5XX_Count', 'HTTPCode_Target_5XX_Count', 'RequestCount'])
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'UnHealthyHostCount', Namespace: 'AWS/ApplicationELB' })
    const [topicId] = only(template, 'AWS::SNS::Topic')
    for (const alarm of alarms) assert.deepEqual(alarm.Properties.AlarmActions, [{ Ref: topicId }])
  })

  it('scales on CPU and on requests per target, never below the desired count', () => {
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', { MinCapacity: 2, MaxCapacity: 6 })
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      TargetTrackingScalingPolicyConfiguration: Match.objectLike({
        PredefinedMetricSpecification: { PredefinedMetricType: 'ECSServiceAverageCPUUtilization' }, TargetValue: 60
      })
    })
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      TargetTrackingScalingPolicyConfiguration: Match.objectLike({
        PredefinedMetricSpecification: Match.objectLike({ PredefinedMetricType: 'ALBRequestCountPerTarget' }), TargetValue: 1000
      })
    })
  })
})

describe('configuration variants', () => {
  it('without WAF, no web ACL', () => {
    const template = synth({ waf: 'false' })
    template.resourceCountIs('AWS::WAFv2::WebACL', 0)
    template.resourceCountIs('AWS::WAFv2::WebACLAssociation', 0)
  })

  it('in an existing VPC: no new network, its subnets used, TRUST_PROXY its CIDR', () => {
    const template = synth({
      vpcId: 'vpc-0123456789abcdef0',
      vpcCidr: '172.31.0.0/16',
      availabilityZones: 'eu-west-2a,eu-west-2b',
      publicSubnetIds: 'subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa2',
      privateSubnetIds: 'subnet-0bbbbbbbbbbbbbbb1,subnet-0bbbbbbbbbbbbbbb2',
      desiredCount: 3
    })
    template.resourceCountIs('AWS::EC2::VPC', 0)
    template.resourceCountIs('AWS::EC2::Subnet', 0)
    assert.equal(env(template).TRUST_PROXY, '172.31.0.0/16')
    template.hasResourceProperties('AWS::ECS::Service', {
      DesiredCount: 3,
      NetworkConfiguration: { AwsvpcConfiguration: Match.objectLike({ Subnets: ['subnet-0bbbbbbbbbbbbbbb1', 'subnet-0bbbbbbbbbbbbbbb2'] }) }
    })
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Subnets: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0aaaaaaaaaaaaaaa2'] })
    template.hasResourceProperties('AWS::ElastiCache::SubnetGroup', { SubnetIds: ['subnet-0bbbbbbbbbbbbbbb1', 'subnet-0bbbbbbbbbbbbbbb2'] })
  })

  it('an existing CUSTOMER_JWT_SECRET by ARN is injected and is the only extra secret readable', () => {
    const arn = 'arn:aws:secretsmanager:eu-west-2:111111111111:secret:site/customer-jwt-AbCdEf'
    const template = synth({ customerJwtSecret: arn, requireCustomerToken: 'true' })
    template.resourceCountIs('AWS::SecretsManager::Secret', 3)
    const c = container(template)
    assert.equal(c.Secrets?.find((s) => s.Name === 'CUSTOMER_JWT_SECRET')?.ValueFrom, arn)
    assert.equal(env(template).REQUIRE_CUSTOMER_TOKEN, 'true')
  })

  it('without a customer token secret, CUSTOMER_JWT_SECRET is not set at all', () => {
    const template = synth()
    assert.ok(!(container(template).Secrets ?? []).some((s) => s.Name === 'CUSTOMER_JWT_SECRET'))
    template.resourceCountIs('AWS::SecretsManager::Secret', 3)
  })

  it('extra service settings pass through as plain environment values', () => {
    const template = synth({ environment: '{"CONNECT_RATE_LIMIT":"5","RATE_LIMIT_MAX":"20"}' })
    assert.equal(env(template).CONNECT_RATE_LIMIT, '5')
    assert.equal(env(template).RATE_LIMIT_MAX, '20')
  })
})

describe('the WAF body-size pattern', () => {
  it('matches exactly the decimal numbers above the limit', () => {
    for (const limit of [16_384, 9, 10, 99, 100, 1_000, 8_192, 65_535]) {
      const pattern = new RegExp(contentLengthAbove(limit))
      for (let n = 0; n <= limit * 11; n += n < limit * 2 ? 1 : 97) {
        assert.equal(pattern.test(String(n)), n > limit, `${n} against ${limit}`)
      }
      assert.ok(pattern.test('12345678901234567890'))
      assert.ok(!pattern.test(''))
      assert.ok(!pattern.test(`${limit + 1}x`))
    }
  })
})
