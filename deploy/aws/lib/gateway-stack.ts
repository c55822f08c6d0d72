import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import {
  CfnOutput, Duration, Fn, IgnoreMode, RemovalPolicy, SecretValue, Stack, type StackProps
} from 'aws-cdk-lib'
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch'
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions'
import * as ec2 from 'aws-cdk-lib/aws-ec2'
import { Platform } from 'aws-cdk-lib/aws-ecr-assets'
import * as ecs from 'aws-cdk-lib/aws-ecs'
import * as elasticache from 'aws-cdk-lib/aws-elasticache'
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2'
import * as iam from 'aws-cdk-lib/aws-iam'
import * as logs from 'aws-cdk-lib/aws-logs'
import * as route53Targets from 'aws-cdk-lib/aws-route53-targets'
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager'
import * as sns from 'aws-cdk-lib/aws-sns'
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions'
import * as wafv2 from 'aws-cdk-lib/aws-wafv2'
import type { Construct } from 'constructs'
import type { GatewayConfig } from './config.js'
import { addAppSecrets, connectStatements } from './connect-access.js'
import { addDnsRecord } from './dns.js'
import { addDashboard, addLogCodeAlarms, addMetricsCollector, addServiceAlarms, withRunbook } from './observability.js'
import { addWidgets } from './widgets.js'

/** The repository root: its Dockerfile and .dockerignore decide what goes into the image. */
const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url))

/** The commit being deployed, built into the image (the service reports it on /health/live). */
function sourceCommit (): string {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return 'unknown'
  }
}

const SERVICE_PORT = 3000
const REDIS_PORT = 6379
const METRICS_PORT = 9464
/** The service's own limit (Fastify bodyLimit); the WAF refuses larger bodies before they arrive. */
const BODY_LIMIT_BYTES = 16 * 1024
/**
 * Below Node's and Fastify's keep-alive timeout (72 s, which the service keeps): the load balancer
 * must be the side that closes an idle connection, or it may send a request on a socket the task
 * is closing at that moment and answer 502.
 */
const ALB_IDLE_TIMEOUT_SECONDS = 60
/** The service gives in-flight starts this long after SIGTERM (its SHUTDOWN_GRACE_MS default). */
const SHUTDOWN_GRACE_SECONDS = 15
export const METRIC_NAMESPACE = 'ConnectChatGateway'

export interface GatewayStackProps extends StackProps {
  config: GatewayConfig
}

/** connect-chat-gateway on ECS Fargate behind an HTTPS load balancer, with ElastiCache and Secrets Manager. */
export class GatewayStack extends Stack {
  constructor (scope: Construct, id: string, props: GatewayStackProps) {
    super(scope, id, props)
    const { config } = props

    // --- Network -------------------------------------------------------------------------------
    // An existing VPC is described, never looked up: synthesis stays offline and credential-free.
    const vpc: ec2.IVpc = config.vpc
      ? ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
        vpcId: config.vpc.vpcId,
        vpcCidrBlock: config.vpc.vpcCidr,
        availabilityZones: config.vpc.availabilityZones,
        publicSubnetIds: config.vpc.publicSubnetIds,
        privateSubnetIds: config.vpc.privateSubnetIds
      })
      : new ec2.Vpc(this, 'Vpc', {
        maxAzs: 2,
        natGateways: config.natGateways,
        subnetConfiguration: [
          { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
          { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 }
        ]
      })
    const privateSubnets = vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS })

    const albSecurityGroup = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc, description: 'connect-chat-gateway load balancer: HTTPS and the HTTP redirect from anywhere'
    })
    albSecurityGroup.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS')
    albSecurityGroup.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(80), 'HTTP, redirected to HTTPS')
    const serviceSecurityGroup = new ec2.SecurityGroup(this, 'ServiceSecurityGroup', {
      vpc, description: 'connect-chat-gateway tasks: the service port from the load balancer only'
    })
    serviceSecurityGroup.addIngressRule(albSecurityGroup, ec2.Port.tcp(SERVICE_PORT), 'from the load balancer')
    const redisSecurityGroup = new ec2.SecurityGroup(this, 'RedisSecurityGroup', {
      vpc, description: 'connect-chat-gateway Redis: from the tasks only', allowAllOutbound: false
    })
    redisSecurityGroup.addIngressRule(serviceSecurityGroup, ec2.Port.tcp(REDIS_PORT), 'from the tasks')

    // --- Secrets -------------------------------------------------------------------------------
    // Generated into Secrets Manager at deploy time: no value ever appears in the template.
    const { resumeTokenSecret, customerJwtSecret } = addAppSecrets(this, config.customerJwtSecret)
    const redisAuthToken = new secretsmanager.Secret(this, 'RedisAuthToken', {
      description: 'connect-chat-gateway ElastiCache auth token',
      // ElastiCache refuses some punctuation in tokens, and the token also goes into a URL.
      generateSecretString: { passwordLength: 64, excludePunctuation: true }
    })

    // --- Shared state: ElastiCache with TLS and an auth token ----------------------------------
    const cacheSubnets = new elasticache.CfnSubnetGroup(this, 'RedisSubnets', {
      description: 'connect-chat-gateway Redis subnets',
      subnetIds: privateSubnets.subnetIds
    })
    const redis = new elasticache.CfnReplicationGroup(this, 'Redis', {
      replicationGroupDescription: 'connect-chat-gateway rate limits, pacing and spent resume tokens',
      engine: config.cacheEngine,
      engineVersion: config.cacheEngine === 'valkey' ? '8.0' : '7.1',
      cacheNodeType: config.cacheNodeType,
      // A primary and a replica in two zones, failing over on its own.
      numCacheClusters: 2,
      automaticFailoverEnabled: true,
      multiAzEnabled: true,
      transitEncryptionEnabled: true,
      transitEncryptionMode: 'required',
      atRestEncryptionEnabled: true,
      authToken: redisAuthToken.secretValue.unsafeUnwrap(),
      port: REDIS_PORT,
      cacheSubnetGroupName: cacheSubnets.ref,
      securityGroupIds: [redisSecurityGroup.securityGroupId]
    })
    // The service reads one REDIS_URL, and the token is part of it: the whole URL is a secret of
    // its own, written by CloudFormation from the token's dynamic reference and the endpoint.
    const redisUrl = new secretsmanager.Secret(this, 'RedisUrl', {
      description: 'connect-chat-gateway REDIS_URL: rediss://:<auth token>@<primary endpoint>:6379',
      secretStringValue: SecretValue.unsafePlainText(Fn.join('', [
        'rediss://:', redisAuthToken.secretValue.unsafeUnwrap(), '@', redis.attrPrimaryEndPointAddress, ':', redis.attrPrimaryEndPointPort
      ]))
    })

    // --- Compute ---------------------------------------------------------------------------------
    const cluster = new ecs.Cluster(this, 'Cluster', { vpc })
    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: config.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.RETAIN
    })

    const taskRole = new iam.Role(this, 'TaskRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'connect-chat-gateway tasks: StartChatContact, StopContact, DescribeContact and availability reads on one Connect instance, nothing else'
    })
    for (const statement of connectStatements(config)) taskRole.addToPolicy(statement)

    const taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      cpu: 256,
      memoryLimitMiB: 512,
      taskRole,
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.X86_64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX }
    })
    const environment: Record<string, string> = {
      ...config.environment,
      NODE_ENV: 'production',
      PORT: String(SERVICE_PORT),
      AWS_REGION: config.region,
      CONNECT_INSTANCE_ID: config.instanceId,
      CONNECT_CONTACT_FLOW_ID: config.contactFlowId,
      // The service refuses to start in production without it; `none` says no browser on purpose.
      ALLOWED_ORIGINS: config.allowedOrigins.join(',') || 'none',
      ALLOWED_ATTRIBUTES: config.allowedAttributes.join(','),
      // Only the load balancer, inside the VPC, may set X-Forwarded-For.
      TRUST_PROXY: vpc.vpcCidrBlock,
      // Prometheus metrics stay off the public port; nothing outside the task reaches 9464.
      METRICS_PORT: String(METRICS_PORT),
      ...(config.requireCustomerToken ? { REQUIRE_CUSTOMER_TOKEN: 'true' } : {})
    }
    const secrets: Record<string, ecs.Secret> = {
      RESUME_TOKEN_SECRET: ecs.Secret.fromSecretsManager(resumeTokenSecret),
      REDIS_URL: ecs.Secret.fromSecretsManager(redisUrl),
      ...(customerJwtSecret ? { CUSTOMER_JWT_SECRET: ecs.Secret.fromSecretsManager(customerJwtSecret) } : {})
    }
    // Built from the repository's Dockerfile by `cdk deploy`; synthesis only stages the files the
    // .dockerignore lets through.
    const image = ecs.ContainerImage.fromAsset(REPO_ROOT, {
      ignoreMode: IgnoreMode.DOCKER, platform: Platform.LINUX_AMD64, buildArgs: { SOURCE_COMMIT: sourceCommit() }
    })
    const container = taskDefinition.addContainer('gateway', {
      image,
      environment,
      secrets,
      portMappings: [{ containerPort: SERVICE_PORT }],
      logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: 'gateway' }),
      // ECS ignores an image's HEALTHCHECK, so the Dockerfile's own check is repeated here.
      healthCheck: {
        command: ['CMD', 'node', '-e', `fetch('http://127.0.0.1:${SERVICE_PORT}/health/live').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`],
        interval: Duration.seconds(10),
        timeout: Duration.seconds(3),
        startPeriod: Duration.seconds(15),
        retries: 3
      },
      // Time for the service's own drain before ECS sends SIGKILL.
      stopTimeout: Duration.seconds(SHUTDOWN_GRACE_SECONDS + 15)
    })
    if (config.widgets) {
      addWidgets(this, {
        widgets: config.widgets, taskDefinition, gateway: container, image, taskRole, region: config.region,
        instanceId: config.instanceId, logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: 'widgets-file' })
      })
    }

    const service = new ecs.FargateService(this, 'Service', {
      cluster,
      taskDefinition,
      desiredCount: config.desiredCount,
      vpcSubnets: { subnets: privateSubnets.subnets },
      securityGroups: [serviceSecurityGroup],
      assignPublicIp: false,
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { enable: true, rollback: true },
      healthCheckGracePeriod: Duration.seconds(30)
    })

    // --- Load balancer -------------------------------------------------------------------------
    const alb = new elbv2.ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc,
      internetFacing: true,
      securityGroup: albSecurityGroup,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      idleTimeout: Duration.seconds(ALB_IDLE_TIMEOUT_SECONDS),
      dropInvalidHeaderFields: true
    })
    alb.addRedirect({ sourcePort: 80, sourceProtocol: elbv2.ApplicationProtocol.HTTP, targetPort: 443, targetProtocol: elbv2.ApplicationProtocol.HTTPS })
    const https = alb.addListener('Https', {
      port: 443,
      protocol: elbv2.ApplicationProtocol.HTTPS,
      certificates: [elbv2.ListenerCertificate.fromArn(config.certificateArn)],
      sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
      open: false
    })
    const targetGroup = https.addTargets('Gateway', {
      port: SERVICE_PORT,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targets: [service.loadBalancerTarget({ containerName: container.containerName, containerPort: SERVICE_PORT })],
      healthCheck: {
        // Readiness, not liveness: a draining or overloaded task answers 503 and gets no new work.
        path: '/health/ready',
        healthyHttpCodes: '200',
        interval: Duration.seconds(10),
        timeout: Duration.seconds(5),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 2
      },
      // A chat start ends within CHAT_START_TIMEOUT_MS (10 s); waiting the default 300 s only slows deploys.
      deregistrationDelay: Duration.seconds(SHUTDOWN_GRACE_SECONDS + 5)
    })

    // --- Autoscaling ---------------------------------------------------------------------------
    const scaling = service.autoScaleTaskCount({ minCapacity: config.desiredCount, maxCapacity: config.maxCount })
    scaling.scaleOnCpuUtilization('Cpu', { targetUtilizationPercent: config.cpuTargetPercent })
    scaling.scaleOnRequestCount('RequestsPerTarget', { requestsPerTarget: config.requestsPerTarget, targetGroup })

    // --- Edge: AWS WAF ---------------------------------------------------------------------------
    if (config.waf) {
      const visibility = (metricName: string) => ({ metricName, cloudWatchMetricsEnabled: true, sampledRequestsEnabled: true })
      const webAcl = new wafv2.CfnWebACL(this, 'WebAcl', {
        scope: 'REGIONAL',
        defaultAction: { allow: {} },
        visibilityConfig: visibility('connect-chat-gateway'),
        rules: [
          {
            name: 'RateLimitPerIp',
            priority: 0,
            action: { block: {} },
            statement: { rateBasedStatement: { limit: config.wafRateLimit, aggregateKeyType: 'IP', evaluationWindowSec: 300 } },
            visibilityConfig: visibility('rate-limit-per-ip')
          },
          {
            // An ALB shows WAF only the first 8 KiB of a body, so a size constraint on the body
            // cannot see 16 KiB: the declared Content-Length is measured instead (its digits, as a
            // number above 16384). Chunked bodies without one still meet the service's own 413.
            name: 'BodyOver16KiB',
            priority: 1,
            action: { block: {} },
            statement: {
              regexMatchStatement: {
                fieldToMatch: { singleHeader: { Name: 'content-length' } },
                regexString: contentLengthAbove(BODY_LIMIT_BYTES),
                textTransformations: [{ priority: 0, type: 'NONE' }]
              }
            },
            visibilityConfig: visibility('body-over-16kib')
          },
          {
            name: 'AWSManagedRulesCommonRuleSet',
            priority: 2,
            overrideAction: { none: {} },
            statement: {
              managedRuleGroupStatement: {
                vendorName: 'AWS',
                name: 'AWSManagedRulesCommonRuleSet',
                // Its 8 KB body rule would refuse valid starts between 8 and 16 KiB; counted only,
                // the rule above enforces the service's real limit.
                ruleActionOverrides: [{ name: 'SizeRestrictions_BODY', actionToUse: { count: {} } }]
              }
            },
            visibilityConfig: visibility('aws-common-rules')
          }
        ]
      })
      new wafv2.CfnWebACLAssociation(this, 'WebAclAssociation', { resourceArn: alb.loadBalancerArn, webAclArn: webAcl.attrArn })
    }

    // --- Operations: log metrics and alarms ------------------------------------------------------
    const alarmTopic = new sns.Topic(this, 'Alarms', { displayName: 'connect-chat-gateway alarms' })
    if (config.alarmEmail) alarmTopic.addSubscription(new subscriptions.EmailSubscription(config.alarmEmail))
    const notify = new cwActions.SnsAction(alarmTopic)

    const alarms = [
      ...addLogCodeAlarms(this, logGroup, METRIC_NAMESPACE),
      new cloudwatch.Alarm(this, 'Http5xxRateAlarm', {
        alarmDescription: withRunbook('More than 5% of requests answered 5xx (by the tasks or the load balancer) for 10 minutes.', 'http-5xx-rate'),
        metric: new cloudwatch.MathExpression({
          expression: 'IF(requests > 0, 100 * (FILL(target5xx, 0) + FILL(elb5xx, 0)) / requests, 0)',
          usingMetrics: {
            requests: alb.metrics.requestCount({ statistic: 'Sum' }),
            target5xx: alb.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, { statistic: 'Sum' }),
            elb5xx: alb.metrics.httpCodeElb(elbv2.HttpCodeElb.ELB_5XX_COUNT, { statistic: 'Sum' })
          },
          period: Duration.minutes(5),
          label: '5xx %'
        }),
        threshold: 5,
        evaluationPeriods: 2,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING
      }),
      new cloudwatch.Alarm(this, 'UnhealthyHostsAlarm', {
        alarmDescription: withRunbook('A task has failed the /health/ready check for 3 minutes.', 'unhealthy-hosts'),
        metric: targetGroup.metrics.unhealthyHostCount({ statistic: 'Maximum', period: Duration.minutes(1) }),
        threshold: 1,
        evaluationPeriods: 3,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING
      })
    ]
    for (const alarm of alarms) alarm.addAlarmAction(notify)

    // --- Operations: the service's metrics in CloudWatch, their alarms, the dashboard -------------
    addMetricsCollector(this, {
      taskDefinition, namespace: METRIC_NAMESPACE, metricsPort: METRICS_PORT, retention: config.logRetentionDays as logs.RetentionDays,
      logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: 'metrics-collector' })
    })
    const observed = {
      namespace: METRIC_NAMESPACE, service, alb, targetGroup, notify,
      maxActiveChats: Number(config.environment.CONNECT_MAX_ACTIVE_CHATS) || 100
    }
    const serviceAlarms = addServiceAlarms(this, observed)
    const dashboard = addDashboard(this, { ...observed, alarms: [...alarms, ...serviceAlarms] })
    if (config.dns) addDnsRecord(this, config.dns, new route53Targets.LoadBalancerTarget(alb), 'connect-chat-gateway load balancer')

    // --- Outputs ---------------------------------------------------------------------------------
    new CfnOutput(this, 'LoadBalancerDnsName', {
      value: alb.loadBalancerDnsName,
      description: 'point your domain (the certificate\'s name) here with a CNAME or an alias record'
    })
    new CfnOutput(this, 'ResumeTokenSecretArn', { value: resumeTokenSecret.secretArn })
    new CfnOutput(this, 'RedisAuthTokenSecretArn', { value: redisAuthToken.secretArn })
    new CfnOutput(this, 'RedisUrlSecretArn', { value: redisUrl.secretArn })
    if (customerJwtSecret) new CfnOutput(this, 'CustomerJwtSecretArn', { value: customerJwtSecret.secretArn })
    new CfnOutput(this, 'AlarmTopicArn', { value: alarmTopic.topicArn })
    new CfnOutput(this, 'DashboardName', { value: dashboard.dashboardName })
    new CfnOutput(this, 'ClusterName', { value: cluster.clusterName })
    new CfnOutput(this, 'ServiceName', { value: service.serviceName })
    new CfnOutput(this, 'ReplicationGroupId', { value: redis.ref })
  }
}

/** A regular expression matching decimal numbers (no leading zeros) greater than `limit`. */
export function contentLengthAbove (limit: number): string {
  const digits = String(limit)
  const alternatives = [`[1-9][0-9]{${digits.length},}`]
  for (let i = 0; i < digits.length; i++) {
    const d = Number(digits[i])
    if (d === 9) continue
    const prefix = digits.slice(0, i)
    const low = i === 0 ? Math.max(d + 1, 1) : d + 1
    const rest = digits.length - i - 1
    alternatives.push(`${prefix}[${low}-9]${rest > 0 ? `[0-9]{${rest}}` : ''}`)
  }
  return `^(${alternatives.join('|')})$`
}
