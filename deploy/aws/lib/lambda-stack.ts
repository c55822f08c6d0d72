import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { AssetHashType, CfnOutput, DockerImage, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib'
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2'
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations'
import * as acm from 'aws-cdk-lib/aws-certificatemanager'
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions'
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb'
import * as iam from 'aws-cdk-lib/aws-iam'
import * as lambda from 'aws-cdk-lib/aws-lambda'
import * as logs from 'aws-cdk-lib/aws-logs'
import * as route53Targets from 'aws-cdk-lib/aws-route53-targets'
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager'
import * as sns from 'aws-cdk-lib/aws-sns'
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions'
import type { Construct } from 'constructs'
import type { LambdaConfig } from './config.js'
import { addAppSecrets, connectStatements } from './connect-access.js'
import { addDnsRecord } from './dns.js'
import { addLambdaAlarms, addLambdaDashboard } from './lambda-observability.js'
import { METRIC_NAMESPACE } from './gateway-stack.js'
import { widgetFlowsStatement, type WidgetsDeployment } from './widgets.js'

/** The state table's key and TTL attributes, as the service's DynamoDB store writes them (src/dynamodb.ts). */
export const TABLE_KEY = 'pk'
export const TABLE_TTL = 'ttl'
/** The item actions the service's DynamoDB store uses; nothing that reads or writes the table whole. */
export const TABLE_ACTIONS = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:ConditionCheckItem']
/** Layers are unpacked under /opt: the widgets file's place in the function. */
export const LAMBDA_WIDGETS_PATH = '/opt/widgets.json'

/**
 * The gateway's public paths, and nothing else: a scan of other paths is answered by API Gateway
 * (404) without invoking the function, and the service's /metrics and /docs/json stay unreachable.
 * A `$default` catch-all would forward all of it. OPTIONS goes to the service, whose origin policy
 * answers CORS preflights (the API's own CORS setting would answer them without that policy).
 */
export const PUBLIC_ROUTES: Array<{ path: string; methods: apigwv2.HttpMethod[] }> = [
  { path: '/chat/{proxy+}', methods: [apigwv2.HttpMethod.GET, apigwv2.HttpMethod.POST, apigwv2.HttpMethod.OPTIONS] },
  { path: '/health/live', methods: [apigwv2.HttpMethod.GET] },
  { path: '/health/ready', methods: [apigwv2.HttpMethod.GET] }
]

export interface LambdaGatewayStackProps extends StackProps {
  config: LambdaConfig
}

/** connect-chat-gateway as one Lambda function behind an API Gateway HTTP API, its shared state in DynamoDB. */
export class LambdaGatewayStack extends Stack {
  constructor (scope: Construct, id: string, props: LambdaGatewayStackProps) {
    super(scope, id, props)
    const { config } = props

    // --- Shared state ----------------------------------------------------------------------------
    // Every item is short-lived (a rate window, a pacing token, a spent token until it would have
    // expired anyway), so point-in-time recovery would restore nothing worth having, and the table
    // goes with the stack: once the stack is gone nothing reads it, and a retained table would
    // only be an orphan. Replacing it while the stack lives loses the same state either way.
    const table = new dynamodb.Table(this, 'StateTable', {
      partitionKey: { name: TABLE_KEY, type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: TABLE_TTL,
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: false },
      removalPolicy: RemovalPolicy.DESTROY
    })

    // --- Secrets ---------------------------------------------------------------------------------
    // Lambda has no secret injection: the function gets each secret's id in SECRET_IDS and reads
    // the values from Secrets Manager when it starts, so no value is in its configuration.
    const { resumeTokenSecret, customerJwtSecret } = addAppSecrets(this, config.customerJwtSecret)
    // Environment variable -> the secret and the id the function asks Secrets Manager for: the ARN
    // of a secret this stack knows, the name of a widget's (its ARN ends in a suffix unknown here).
    const secrets: Record<string, { secret: secretsmanager.ISecret; id: string }> = {
      RESUME_TOKEN_SECRET: { secret: resumeTokenSecret, id: resumeTokenSecret.secretArn },
      ...(customerJwtSecret ? { CUSTOMER_JWT_SECRET: { secret: customerJwtSecret, id: customerJwtSecret.secretArn } } : {})
    }
    for (const [env, name] of Object.entries(config.widgets?.secrets ?? {})) {
      secrets[env] = { secret: secretsmanager.Secret.fromSecretNameV2(this, `WidgetSecret${env}`, name), id: name }
    }

    // --- Function --------------------------------------------------------------------------------
    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: config.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.RETAIN
    })
    const environment: Record<string, string> = {
      ...config.environment,
      NODE_ENV: 'production',
      // AWS_REGION is Lambda's own (the stack's region); no PORT, TRUST_PROXY or REDIS_URL: the
      // client address comes from API Gateway's request context, the state from the table.
      CONNECT_INSTANCE_ID: config.instanceId,
      CONNECT_CONTACT_FLOW_ID: config.contactFlowId,
      ALLOWED_ORIGINS: config.allowedOrigins.join(',') || 'none',
      ALLOWED_ATTRIBUTES: config.allowedAttributes.join(','),
      STATE_STORE: 'dynamodb',
      STATE_TABLE: table.tableName,
      SECRET_IDS: this.toJsonString(Object.fromEntries(Object.entries(secrets).map(([env, s]) => [env, s.id]))),
      ...(config.requireCustomerToken ? { REQUIRE_CUSTOMER_TOKEN: 'true' } : {}),
      ...(config.widgets ? { WIDGETS_FILE: LAMBDA_WIDGETS_PATH } : {})
    }
    const fn = new lambda.Function(this, 'Function', {
      description: 'connect-chat-gateway: Amazon Connect chat starts',
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      handler: 'index.handler',
      // The bundle `npm run build:lambda` made; synthesis only stages it (config.ts checked it exists).
      code: lambda.Code.fromAsset(config.lambdaAsset),
      memorySize: config.memoryMb,
      timeout: Duration.seconds(config.timeoutSeconds),
      ...(config.reservedConcurrency === undefined ? {} : { reservedConcurrentExecutions: config.reservedConcurrency }),
      environment,
      logGroup,
      // Text: the service's JSON lines reach the log as written, so the metric filters read `$.code`.
      loggingFormat: lambda.LoggingFormat.TEXT,
      ...(config.widgets ? { layers: [widgetsLayer(this, config.widgets)] } : {})
    })
    for (const statement of connectStatements(config)) fn.addToRolePolicy(statement)
    const widgetFlows = config.widgets && widgetFlowsStatement(config.widgets, config.region, config.instanceId)
    if (widgetFlows) fn.addToRolePolicy(widgetFlows)
    fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'StateTableItems', actions: TABLE_ACTIONS, resources: [table.tableArn] }))
    for (const { secret } of Object.values(secrets)) secret.grantRead(fn)

    // --- HTTP API --------------------------------------------------------------------------------
    // AWS WAF cannot be associated with an HTTP API (only REST APIs, load balancers, CloudFront and
    // a few others): the stage's throttling and the service's own limits stand in for it.
    const api = new apigwv2.HttpApi(this, 'Api', {
      apiName: `${this.stackName}-api`,
      description: 'connect-chat-gateway: the public chat and health paths',
      createDefaultStage: false,
      // With a custom domain it is the only way in, as the certificate's name is on the load balancer.
      disableExecuteApiEndpoint: config.domain !== undefined
    })
    const integration = new HttpLambdaIntegration('Gateway', fn, {
      payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0,
      // A second past the function's own limit: a timed-out invocation is reported, not cut short.
      timeout: Duration.seconds(Math.min(config.timeoutSeconds + 1, 29))
    })
    for (const route of PUBLIC_ROUTES) api.addRoutes({ ...route, integration })

    const domain = config.domain && new apigwv2.DomainName(this, 'DomainName', {
      domainName: config.domain.domainName,
      certificate: acm.Certificate.fromCertificateArn(this, 'Certificate', config.domain.certificateArn),
      securityPolicy: apigwv2.SecurityPolicy.TLS_1_2
    })
    const stage = new apigwv2.HttpStage(this, 'Stage', {
      httpApi: api,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: config.apiRateLimit, burstLimit: config.apiBurstLimit },
      ...(domain ? { domainMapping: { domainName: domain } } : {})
    })
    if (domain && config.domain) {
      addDnsRecord(this, config.domain, new route53Targets.ApiGatewayv2DomainProperties(domain.regionalDomainName, domain.regionalHostedZoneId), 'connect-chat-gateway HTTP API')
    }

    // --- Operations --------------------------------------------------------------------------------
    const alarmTopic = new sns.Topic(this, 'Alarms', { displayName: 'connect-chat-gateway alarms' })
    if (config.alarmEmail) alarmTopic.addSubscription(new subscriptions.EmailSubscription(config.alarmEmail))
    const observed = { namespace: METRIC_NAMESPACE, fn, api, table, logGroup, timeoutSeconds: config.timeoutSeconds, reservedConcurrency: config.reservedConcurrency }
    const alarms = addLambdaAlarms(this, observed)
    for (const alarm of alarms) alarm.addAlarmAction(new cwActions.SnsAction(alarmTopic))
    const dashboard = addLambdaDashboard(this, { ...observed, alarms })

    // --- Outputs ---------------------------------------------------------------------------------
    new CfnOutput(this, 'ApiUrl', {
      value: config.domain ? `https://${config.domain.domainName}` : stage.url,
      description: 'the chat-start URL is this plus /chat/start'
    })
    new CfnOutput(this, 'FunctionName', { value: fn.functionName })
    new CfnOutput(this, 'StateTableName', { value: table.tableName })
    new CfnOutput(this, 'ResumeTokenSecretArn', { value: resumeTokenSecret.secretArn })
    if (customerJwtSecret) new CfnOutput(this, 'CustomerJwtSecretArn', { value: customerJwtSecret.secretArn })
    new CfnOutput(this, 'AlarmTopicArn', { value: alarmTopic.topicArn })
    new CfnOutput(this, 'DashboardName', { value: dashboard.dashboardName })
  }
}

/**
 * The widgets file as a layer, so the function reads it at WIDGETS_FILE like a file on a host. It is
 * written straight into the asset at synth time; its hash names the asset, so a changed file is a
 * new layer version and a new function version on `cdk deploy`. No Docker: the image is never used.
 */
function widgetsLayer (scope: Construct, widgets: WidgetsDeployment): lambda.LayerVersion {
  const local = {
    tryBundle (outputDir: string) {
      writeFileSync(join(outputDir, 'widgets.json'), widgets.json, { mode: 0o444 })
      return true
    }
  }
  return new lambda.LayerVersion(scope, 'WidgetsFile', {
    description: 'connect-chat-gateway WIDGETS_FILE (docs/widgets.md), from the widgetsFile context value',
    compatibleArchitectures: [lambda.Architecture.ARM_64],
    code: lambda.Code.fromAsset(import.meta.dirname, {
      assetHashType: AssetHashType.CUSTOM,
      assetHash: widgets.sha256,
      bundling: { image: DockerImage.fromRegistry('scratch'), local }
    })
  })
}
