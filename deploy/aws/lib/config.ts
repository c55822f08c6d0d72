// The deployment's settings, read from CDK context (cdk.json or `-c key=value`) and checked before
// anything is built: a deploy that fails half-way through CloudFormation costs far more than a
// message at synth time naming the value to fix.
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { DnsRecord } from './dns.js'
import { readWidgets, type WidgetsDeployment } from './widgets.js'

export interface ExistingVpc {
  vpcId: string
  /** TRUST_PROXY is set to it: the ALB's addresses come from this range. */
  vpcCidr: string
  availabilityZones: string[]
  publicSubnetIds: string[]
  privateSubnetIds: string[]
}

export interface GatewayConfig {
  region: string
  instanceId: string
  contactFlowId: string
  certificateArn: string
  allowedOrigins: string[]
  allowedAttributes: string[]
  desiredCount: number
  maxCount: number
  cpuTargetPercent: number
  requestsPerTarget: number
  waf: boolean
  wafRateLimit: number
  logRetentionDays: number
  cacheEngine: 'valkey' | 'redis'
  cacheNodeType: string
  natGateways: number
  alarmEmail?: string
  /** "generate" creates a secret the site's backend then reads; an ARN uses an existing one. */
  customerJwtSecret?: 'generate' | string
  requireCustomerToken: boolean
  vpc?: ExistingVpc
  /** More service settings (RATE_LIMIT_MAX, CONNECT_RATE_LIMIT, …) passed as they are. */
  environment: Record<string, string>
  /** WIDGETS_FILE and the widgets' secrets (lib/widgets.ts). */
  widgets?: WidgetsDeployment
  /** An alias record for the load balancer (lib/dns.ts). */
  dns?: DnsRecord
}

/** The settings of the serverless deployment (mode=lambda): the shared ones and its own. */
export interface LambdaConfig extends SharedConfig {
  /** Absolute path of the Lambda bundle's directory. */
  lambdaAsset: string
  memoryMb: number
  timeoutSeconds: number
  reservedConcurrency?: number
  apiRateLimit: number
  apiBurstLimit: number
  /** A custom domain for the HTTP API: the alias record and the certificate it serves. */
  domain?: DnsRecord & { certificateArn: string }
}

/** What both deployments read alike. */
export type SharedConfig = Pick<GatewayConfig, 'region' | 'instanceId' | 'contactFlowId' | 'allowedOrigins' | 'allowedAttributes' |
  'logRetentionDays' | 'alarmEmail' | 'customerJwtSecret' | 'requireCustomerToken' | 'environment' | 'widgets'>

export class DeployConfigError extends Error {
  override name = 'DeployConfigError'
}

/** Every context key this app reads, with what it means: the error messages quote these. */
export const CONTEXT_KEYS = {
  region: 'AWS region of the Amazon Connect instance; the stack deploys there',
  instanceId: 'Amazon Connect instance id (a UUID, from the instance ARN)',
  contactFlowId: 'contact flow id for chats (a UUID, from the flow ARN)',
  certificateArn: 'ARN of the ACM certificate for the HTTPS listener, in the same region',
  allowedOrigins: 'comma-separated origins allowed to start chats from a browser (https://www.example.com, https://*.example.com); none or empty: no browser',
  allowedAttributes: 'comma-separated contact attribute keys a browser may send',
  desiredCount: 'tasks at rest (at least 2, spread over two availability zones)',
  maxCount: 'most tasks autoscaling may run',
  cpuTargetPercent: 'average CPU autoscaling aims for',
  requestsPerTarget: 'requests per task per minute autoscaling aims for',
  waf: 'true to put an AWS WAF web ACL in front of the load balancer',
  wafRateLimit: 'requests per client IP per 5 minutes before WAF blocks it',
  logRetentionDays: 'days CloudWatch keeps the service logs',
  cacheEngine: 'valkey or redis',
  cacheNodeType: 'ElastiCache node type',
  natGateways: 'NAT gateways of the new VPC (1 is cheapest, 2 survives an AZ outage)',
  alarmEmail: 'address subscribed to the alarms topic',
  customerJwtSecret: '"generate" or the ARN of an existing Secrets Manager secret holding CUSTOMER_JWT_SECRET',
  requireCustomerToken: 'true to refuse chat starts without a customer token',
  vpcId: 'id of an existing VPC to deploy into (a new one is created when unset)',
  vpcCidr: 'CIDR of the existing VPC',
  availabilityZones: 'comma-separated availability zones of the existing VPC\'s subnets',
  publicSubnetIds: 'comma-separated public subnet ids of the existing VPC (for the load balancer)',
  privateSubnetIds: 'comma-separated private subnet ids with a route to the internet (for tasks and Redis)',
  environment: 'object of further service settings, e.g. {"CONNECT_RATE_LIMIT":"5"}',
  widgetsFile: 'path (from deploy/aws) of a WIDGETS_FILE to deploy (docs/widgets.md); each deploy ships its current content',
  widgetSecrets: 'object of each widget secretEnv to the name of the Secrets Manager secret holding it, e.g. {"ACME_JWT_SECRET":"prod/chat/acme-jwt"}',
  domainName: 'name customers use (chat.example.com): an alias record for the load balancer is made in hostedZoneId',
  hostedZoneId: 'id of the Route 53 hosted zone for domainName',
  hostedZoneName: 'name of that hosted zone (example.com)',
  mode: 'fargate (the default: ECS Fargate behind a load balancer) or lambda (one Lambda function behind an API Gateway HTTP API, state in DynamoDB)',
  lambdaAsset: 'directory holding the Lambda bundle (index.mjs), from the directory cdk runs in; default: dist/lambda of the repository, made by `npm run build:lambda`',
  lambdaMemoryMb: 'memory of the Lambda function in MB (CPU grows with it)',
  lambdaTimeoutSeconds: 'most seconds one invocation may run; above CHAT_START_TIMEOUT_MS, at most 29 (the HTTP API waits no longer)',
  lambdaReservedConcurrency: 'most invocations at once, reserved from the account\'s pool; unset: no reservation, the account\'s unreserved pool is the limit',
  apiRateLimit: 'requests per second the HTTP API stage passes on, all clients together (steady rate)',
  apiBurstLimit: 'requests the HTTP API stage passes on at once above the steady rate'
} as const

export type ContextKey = keyof typeof CONTEXT_KEYS

// Settings this app owns, or secrets, which must never arrive as plain environment values.
const MANAGED_ENV = new Set(['NODE_ENV', 'PORT', 'HOST', 'AWS_REGION', 'CONNECT_INSTANCE_ID', 'CONNECT_CONTACT_FLOW_ID',
  'ALLOWED_ORIGINS', 'ALLOWED_ATTRIBUTES', 'TRUST_PROXY', 'REDIS_URL', 'RESUME_TOKEN_SECRET', 'CUSTOMER_JWT_SECRET',
  'REQUIRE_CUSTOMER_TOKEN', 'CONNECT_SIMULATOR', 'METRICS_PORT', 'WIDGETS_FILE', 'STATE_STORE', 'STATE_TABLE', 'SECRET_IDS'])
const SECRET_LIKE = /SECRET|PASSWORD|CREDENTIAL|AUTH_TOKEN|SESSION_TOKEN|ACCESS_KEY|PRIVATE_KEY/

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const REGION = /^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$/
const CERT_ARN = /^arn:aws[a-z-]*:acm:([a-z0-9-]+):\d{12}:certificate\/[0-9a-f-]{36}$/
const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$/
const ATTRIBUTE_KEY = /^[A-Za-z0-9_-]+$/
const CIDR = /^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/
const ENV_NAME = /^[A-Z][A-Z0-9_]*$/
// CloudWatch Logs accepts only these retention periods.
const RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]

type Raw = Partial<Record<ContextKey, unknown>>

/** Typed readers of the raw values; each problem is collected with its key, so one run names all. */
function reader (raw: Raw) {
  const problems: string[] = []
  const problem = (key: ContextKey, text: string) => problems.push(`${key}: ${text} (${CONTEXT_KEYS[key]})`)

  const str = (key: ContextKey): string | undefined => {
    const v = raw[key]
    if (v === undefined || v === null || v === '') return undefined
    if (typeof v !== 'string') { problem(key, `must be a string, got ${JSON.stringify(v)}`); return undefined }
    return v.trim()
  }
  const required = (key: ContextKey, pattern: RegExp, example: string): string => {
    const v = str(key)
    if (v === undefined) problem(key, `is required, e.g. -c ${key}=${example}`)
    else if (!pattern.test(v)) problem(key, `"${v}" is not valid, expected something like ${example}`)
    return v ?? ''
  }
  const list = (key: ContextKey): string[] => {
    const v = raw[key]
    if (v === undefined || v === null || v === '') return []
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v.map((x) => x.trim()).filter(Boolean)
    if (typeof v === 'string') return v.split(',').map((x) => x.trim()).filter(Boolean)
    problem(key, 'must be a comma-separated string or a list of strings')
    return []
  }
  const int = (key: ContextKey, def: number, min: number, max: number): number => {
    const v = raw[key]
    if (v === undefined || v === null || v === '') return def
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : NaN
    if (!Number.isInteger(n) || n < min || n > max) { problem(key, `${JSON.stringify(v)} is not a whole number from ${min} to ${max}`); return def }
    return n
  }
  const bool = (key: ContextKey, def: boolean): boolean => {
    const v = raw[key]
    if (v === undefined || v === null || v === '') return def
    if (v === true || v === 'true') return true
    if (v === false || v === 'false') return false
    problem(key, `${JSON.stringify(v)} is not true or false`)
    return def
  }
  /** Keys of the other deployment mode are refused rather than silently ignored. */
  const notIn = (mode: Mode, keys: readonly ContextKey[]) => {
    for (const key of keys) if (raw[key] !== undefined) problem(key, `only applies with mode=${mode === 'fargate' ? 'lambda' : 'fargate'}`)
  }
  const done = <T>(config: T): T => {
    if (problems.length > 0) {
      throw new DeployConfigError(`connect-chat-gateway: the deployment configuration is not valid:\n  ${problems.join('\n  ')}`)
    }
    return config
  }
  return { raw, problem, str, required, list, int, bool, notIn, done }
}
type Reader = ReturnType<typeof reader>

export type Mode = 'fargate' | 'lambda'
const FARGATE_ONLY = ['desiredCount', 'maxCount', 'cpuTargetPercent', 'requestsPerTarget', 'waf', 'wafRateLimit', 'cacheEngine',
  'cacheNodeType', 'natGateways', 'vpcId', 'vpcCidr', 'availabilityZones', 'publicSubnetIds', 'privateSubnetIds'] as const
const LAMBDA_ONLY = ['lambdaAsset', 'lambdaMemoryMb', 'lambdaTimeoutSeconds', 'lambdaReservedConcurrency', 'apiRateLimit', 'apiBurstLimit'] as const

/** The `mode` context value: fargate unless it says lambda. */
export function readMode (value: unknown): Mode {
  if (value === undefined || value === null || value === '' || value === 'fargate') return 'fargate'
  if (value === 'lambda') return 'lambda'
  throw new DeployConfigError(`connect-chat-gateway: the deployment configuration is not valid:\n  mode: ${JSON.stringify(value)} is neither fargate nor lambda (${CONTEXT_KEYS.mode})`)
}

/** The settings both deployments read alike: Connect, the browser policy, logs, secrets, widgets. */
function readShared (r: Reader, certificate: { arn: string | undefined; user: string }): SharedConfig {
  const { raw, problem, str, required, list, int, bool } = r
  const region = required('region', REGION, 'eu-west-2')
  const instanceId = required('instanceId', UUID, '12345678-1234-1234-1234-123456789012')
  const contactFlowId = required('contactFlowId', UUID, '12345678-1234-1234-1234-123456789012')
  const certRegion = certificate.arn === undefined ? undefined : CERT_ARN.exec(certificate.arn)?.[1]
  if (certRegion && region && certRegion !== region) {
    problem('certificateArn', `is in ${certRegion}, but ${certificate.user} in ${region} needs a certificate from ${region}`)
  }

  // `none` (or nothing) means no browser may call: a mobile-only deployment. `https://*.example.com`
  // means any subdomain, as the service reads it.
  const allowedOrigins = list('allowedOrigins').filter((o) => o !== 'none')
  for (const origin of allowedOrigins) {
    if (/^https?:\/\/\*\.[a-z0-9-]+(\.[a-z0-9-]+)+(:\d{1,5})?$/i.test(origin)) continue
    let parsed: URL | undefined
    try { parsed = new URL(origin) } catch { /* reported below */ }
    if (!parsed || parsed.origin !== origin.replace(/\/$/, '') || parsed.origin === 'null') {
      problem('allowedOrigins', `"${origin}" is not an exact origin such as https://www.example.com (or https://*.example.com for its subdomains)`)
    }
  }
  const allowedAttributes = list('allowedAttributes')
  for (const key of allowedAttributes) if (!ATTRIBUTE_KEY.test(key)) problem('allowedAttributes', `"${key}" may hold only letters, digits, _ and -`)

  const logRetentionDays = int('logRetentionDays', 30, 1, 3653)
  if (!RETENTION_DAYS.includes(logRetentionDays)) problem('logRetentionDays', `${logRetentionDays} is not one CloudWatch accepts: ${RETENTION_DAYS.join(', ')}`)

  const alarmEmail = str('alarmEmail')
  if (alarmEmail !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(alarmEmail)) problem('alarmEmail', `"${alarmEmail}" is not an email address`)

  const customerJwtSecret = str('customerJwtSecret')
  if (customerJwtSecret !== undefined && customerJwtSecret !== 'generate') {
    const m = SECRET_ARN.exec(customerJwtSecret)
    if (!m) problem('customerJwtSecret', 'must be "generate" or a complete secret ARN (ending in -XXXXXX)')
    else if (region && m[1] !== region) problem('customerJwtSecret', `is in ${m[1]}, the stack in ${region}`)
  }
  const requireCustomerToken = bool('requireCustomerToken', false)
  if (requireCustomerToken && customerJwtSecret === undefined) problem('requireCustomerToken', 'needs customerJwtSecret')

  const environment: Record<string, string> = {}
  const env = raw.environment
  if (env !== undefined) {
    if (typeof env !== 'object' || env === null || Array.isArray(env)) {
      problem('environment', 'must be an object of strings')
    } else {
      for (const [name, value] of Object.entries(env)) {
        if (!ENV_NAME.test(name)) problem('environment', `"${name}" is not an environment variable name`)
        else if (MANAGED_ENV.has(name)) problem('environment', `${name} is set by this app; use its own context key`)
        else if (SECRET_LIKE.test(name)) problem('environment', `${name} looks like a secret; secrets come from Secrets Manager, never plain environment values`)
        else if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') problem('environment', `${name} must be a string`)
        else environment[name] = String(value)
      }
    }
  }

  const widgets = readWidgets(str('widgetsFile'), raw.widgetSecrets, MANAGED_ENV, problem)
  for (const env of Object.keys(widgets?.secrets ?? {})) {
    if (env in environment) problem('widgetSecrets', `${env} is also in environment`)
  }
  return {
    region, instanceId, contactFlowId, allowedOrigins, allowedAttributes, logRetentionDays, alarmEmail,
    customerJwtSecret, requireCustomerToken, environment, widgets
  }
}

/** domainName, hostedZoneId and hostedZoneName: all three or none. */
function readDns ({ problem, str }: Reader): DnsRecord | undefined {
  const domainName = str('domainName')
  const hostedZoneId = str('hostedZoneId')
  const hostedZoneName = str('hostedZoneName')
  if (domainName === undefined && hostedZoneId === undefined && hostedZoneName === undefined) return undefined
  if (domainName === undefined || hostedZoneId === undefined || hostedZoneName === undefined) {
    problem('domainName', 'an alias record needs domainName, hostedZoneId and hostedZoneName together')
  } else if (!/^Z[A-Z0-9]{1,31}$/.test(hostedZoneId)) {
    problem('hostedZoneId', `"${hostedZoneId}" is not a hosted zone id such as Z0123456789ABCDEFGHIJ`)
  } else if (domainName !== hostedZoneName && !domainName.endsWith(`.${hostedZoneName}`)) {
    problem('domainName', `"${domainName}" is not in the hosted zone ${hostedZoneName}`)
  } else {
    return { domainName, hostedZoneId, hostedZoneName }
  }
  return undefined
}

const CERT_EXAMPLE = 'arn:aws:acm:eu-west-2:123456789012:certificate/12345678-1234-1234-1234-123456789012'

/**
 * Reads the raw context values into a GatewayConfig (the Fargate deployment). Every problem is
 * collected, so one run names all of them; each line starts with the context key to set.
 */
export function parseConfig (raw: Raw): GatewayConfig {
  const r = reader(raw)
  const { problem, str, required, list, int, bool } = r
  const certificateArn = required('certificateArn', CERT_ARN, CERT_EXAMPLE)
  const shared = readShared(r, { arn: certificateArn, user: 'a load balancer' })

  const desiredCount = int('desiredCount', 2, 2, 100)
  const maxCount = int('maxCount', Math.max(6, desiredCount), 2, 200)
  if (maxCount < desiredCount) problem('maxCount', `${maxCount} is below desiredCount ${desiredCount}`)

  const cacheEngine = str('cacheEngine') ?? 'valkey'
  if (cacheEngine !== 'valkey' && cacheEngine !== 'redis') problem('cacheEngine', `"${cacheEngine}" is neither valkey nor redis`)
  const cacheNodeType = str('cacheNodeType') ?? 'cache.t4g.micro'
  if (!/^cache\.[a-z0-9]+\.[a-z0-9]+$/.test(cacheNodeType)) problem('cacheNodeType', `"${cacheNodeType}" is not a node type such as cache.t4g.micro`)

  let vpc: ExistingVpc | undefined
  const vpcId = str('vpcId')
  if (vpcId !== undefined) {
    if (!/^vpc-[0-9a-f]{8,17}$/.test(vpcId)) problem('vpcId', `"${vpcId}" is not a VPC id such as vpc-0123456789abcdef0`)
    const vpcCidr = str('vpcCidr')
    if (vpcCidr === undefined) problem('vpcCidr', 'is required with vpcId, e.g. -c vpcCidr=10.0.0.0/16')
    else if (!CIDR.test(vpcCidr)) problem('vpcCidr', `"${vpcCidr}" is not a CIDR such as 10.0.0.0/16`)
    const availabilityZones = list('availabilityZones')
    const publicSubnetIds = list('publicSubnetIds')
    const privateSubnetIds = list('privateSubnetIds')
    if (availabilityZones.length < 2) problem('availabilityZones', 'two or more are required with vpcId')
    for (const [key, ids] of [['publicSubnetIds', publicSubnetIds], ['privateSubnetIds', privateSubnetIds]] as const) {
      if (ids.length !== availabilityZones.length) problem(key, `needs one subnet per availability zone (${availabilityZones.length}), got ${ids.length}`)
      for (const id of ids) if (!/^subnet-[0-9a-f]{8,17}$/.test(id)) problem(key, `"${id}" is not a subnet id`)
    }
    vpc = { vpcId, vpcCidr: vpcCidr ?? '', availabilityZones, publicSubnetIds, privateSubnetIds }
  } else {
    for (const key of ['vpcCidr', 'availabilityZones', 'publicSubnetIds', 'privateSubnetIds'] as const) {
      if (raw[key] !== undefined) problem(key, 'only applies with vpcId')
    }
  }
  r.notIn('fargate', LAMBDA_ONLY)

  return r.done<GatewayConfig>({
    ...shared,
    certificateArn,
    desiredCount,
    maxCount,
    cpuTargetPercent: int('cpuTargetPercent', 60, 10, 90),
    requestsPerTarget: int('requestsPerTarget', 1_000, 10, 1_000_000),
    waf: bool('waf', true),
    wafRateLimit: int('wafRateLimit', 300, 10, 2_000_000_000),
    cacheEngine: cacheEngine as GatewayConfig['cacheEngine'],
    cacheNodeType,
    natGateways: int('natGateways', 1, 1, 3),
    vpc,
    dns: readDns(r)
  })
}

/** The repository's `npm run build:lambda` output, the default Lambda bundle. */
export const DEFAULT_LAMBDA_ASSET = fileURLToPath(new URL('../../../dist/lambda', import.meta.url))
/** The HTTP API gives up on an integration after 29 seconds at most; a longer function only runs unseen. */
export const MAX_LAMBDA_TIMEOUT_SECONDS = 29
/** The service's own default for CHAT_START_TIMEOUT_MS. */
const CHAT_START_TIMEOUT_MS = 10_000

/**
 * Reads the raw context values into a LambdaConfig (mode=lambda). The bundle must exist: synth stages
 * it as an asset, and a deploy of an empty directory would fail far later.
 */
export function parseLambdaConfig (raw: Raw): LambdaConfig {
  const r = reader(raw)
  const { problem, str, int } = r
  const certificateArn = str('certificateArn')
  if (certificateArn !== undefined && !CERT_ARN.test(certificateArn)) problem('certificateArn', `"${certificateArn}" is not valid, expected something like ${CERT_EXAMPLE}`)
  const shared = readShared(r, { arn: certificateArn, user: 'an HTTP API domain' })
  const dns = readDns(r)
  if (dns && certificateArn === undefined) problem('certificateArn', `is required with domainName: the HTTP API serves ${dns.domainName} with it, e.g. -c certificateArn=${CERT_EXAMPLE}`)
  if (!dns && certificateArn !== undefined) problem('certificateArn', 'only applies with domainName in mode=lambda (the HTTP API\'s own endpoint has AWS\'s certificate)')

  const given = str('lambdaAsset')
  const lambdaAsset = given === undefined ? DEFAULT_LAMBDA_ASSET : resolve(given)
  if (!existsSync(join(lambdaAsset, 'index.mjs'))) {
    problem('lambdaAsset', `${lambdaAsset} holds no index.mjs: run \`npm run build:lambda\` at the repository root first${given === undefined ? '' : ', or point lambdaAsset at its output'}`)
  }

  // The function must outlive the service's own deadline for a start, or a slow start ends as a
  // bare timeout instead of the service's 503 DEADLINE_EXCEEDED with its log line.
  const asked = Number(shared.environment.CHAT_START_TIMEOUT_MS)
  const chatStartMs = Number.isInteger(asked) && asked > 0 ? asked : CHAT_START_TIMEOUT_MS
  const leastSeconds = Math.floor(chatStartMs / 1000) + 1
  const timeoutSeconds = int('lambdaTimeoutSeconds', Math.min(MAX_LAMBDA_TIMEOUT_SECONDS, Math.ceil(chatStartMs / 1000) + 5), 1, MAX_LAMBDA_TIMEOUT_SECONDS)
  if (timeoutSeconds < leastSeconds) {
    problem('lambdaTimeoutSeconds', `${timeoutSeconds} s would end a chat start before its own deadline, CHAT_START_TIMEOUT_MS ${chatStartMs} ms; ${leastSeconds} at least`)
  }
  const reservedConcurrency = raw.lambdaReservedConcurrency === undefined ? undefined : int('lambdaReservedConcurrency', 0, 1, 10_000)
  const apiRateLimit = int('apiRateLimit', 50, 1, 10_000)
  const apiBurstLimit = int('apiBurstLimit', 100, 1, 5_000)
  r.notIn('lambda', FARGATE_ONLY)

  return r.done<LambdaConfig>({
    ...shared,
    lambdaAsset,
    memoryMb: int('lambdaMemoryMb', 512, 128, 10_240),
    timeoutSeconds,
    ...(reservedConcurrency === undefined ? {} : { reservedConcurrency }),
    apiRateLimit,
    apiBurstLimit,
    ...(dns && certificateArn !== undefined ? { domain: { ...dns, certificateArn } } : {})
  })
}

/** The context values of a CDK app, by the keys above. */
export function readContext (tryGetContext: (key: string) => unknown): Partial<Record<ContextKey, unknown>> {
  const raw: Partial<Record<ContextKey, unknown>> = {}
  for (const key of Object.keys(CONTEXT_KEYS) as ContextKey[]) {
    let value = tryGetContext(key)
    // `-c environment={"A":"1"}` arrives as a string.
    if ((key === 'environment' || key === 'widgetSecrets') && typeof value === 'string') {
      try { value = JSON.parse(value) } catch { /* left as a string: reported as not an object */ }
    }
    raw[key] = value
  }
  return raw
}
