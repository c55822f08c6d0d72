// The deployment's settings, read from CDK context (cdk.json or `-c key=value`) and checked before
// anything is built: a deploy that fails half-way through CloudFormation costs far more than a
// message at synth time naming the value to fix.
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
  hostedZoneName: 'name of that hosted zone (example.com)'
} as const

export type ContextKey = keyof typeof CONTEXT_KEYS

// Settings this app owns, or secrets, which must never arrive as plain environment values.
const MANAGED_ENV = new Set(['NODE_ENV', 'PORT', 'HOST', 'AWS_REGION', 'CONNECT_INSTANCE_ID', 'CONNECT_CONTACT_FLOW_ID',
  'ALLOWED_ORIGINS', 'ALLOWED_ATTRIBUTES', 'TRUST_PROXY', 'REDIS_URL', 'RESUME_TOKEN_SECRET', 'CUSTOMER_JWT_SECRET',
  'REQUIRE_CUSTOMER_TOKEN', 'CONNECT_SIMULATOR', 'METRICS_PORT', 'WIDGETS_FILE'])
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

/**
 * Reads the raw context values into a GatewayConfig. Every problem is collected, so one run names
 * all of them; each line starts with the context key to set.
 */
export function parseConfig (raw: Partial<Record<ContextKey, unknown>>): GatewayConfig {
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

  const region = required('region', REGION, 'eu-west-2')
  const instanceId = required('instanceId', UUID, '12345678-1234-1234-1234-123456789012')
  const contactFlowId = required('contactFlowId', UUID, '12345678-1234-1234-1234-123456789012')
  const certificateArn = required('certificateArn', CERT_ARN, 'arn:aws:acm:eu-west-2:123456789012:certificate/12345678-1234-1234-1234-123456789012')
  const certRegion = CERT_ARN.exec(certificateArn)?.[1]
  if (certRegion && region && certRegion !== region) {
    problem('certificateArn', `is in ${certRegion}, but a load balancer in ${region} needs a certificate from ${region}`)
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

  const desiredCount = int('desiredCount', 2, 2, 100)
  const maxCount = int('maxCount', Math.max(6, desiredCount), 2, 200)
  if (maxCount < desiredCount) problem('maxCount', `${maxCount} is below desiredCount ${desiredCount}`)

  const logRetentionDays = int('logRetentionDays', 30, 1, 3653)
  if (!RETENTION_DAYS.includes(logRetentionDays)) problem('logRetentionDays', `${logRetentionDays} is not one CloudWatch accepts: ${RETENTION_DAYS.join(', ')}`)

  const cacheEngine = str('cacheEngine') ?? 'valkey'
  if (cacheEngine !== 'valkey' && cacheEngine !== 'redis') problem('cacheEngine', `"${cacheEngine}" is neither valkey nor redis`)
  const cacheNodeType = str('cacheNodeType') ?? 'cache.t4g.micro'
  if (!/^cache\.[a-z0-9]+\.[a-z0-9]+$/.test(cacheNodeType)) problem('cacheNodeType', `"${cacheNodeType}" is not a node type such as cache.t4g.micro`)

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

  let dns: DnsRecord | undefined
  const domainName = str('domainName')
  const hostedZoneId = str('hostedZoneId')
  const hostedZoneName = str('hostedZoneName')
  if (domainName !== undefined || hostedZoneId !== undefined || hostedZoneName !== undefined) {
    if (domainName === undefined || hostedZoneId === undefined || hostedZoneName === undefined) {
      problem('domainName', 'an alias record needs domainName, hostedZoneId and hostedZoneName together')
    } else if (!/^Z[A-Z0-9]{1,31}$/.test(hostedZoneId)) {
      problem('hostedZoneId', `"${hostedZoneId}" is not a hosted zone id such as Z0123456789ABCDEFGHIJ`)
    } else if (domainName !== hostedZoneName && !domainName.endsWith(`.${hostedZoneName}`)) {
      problem('domainName', `"${domainName}" is not in the hosted zone ${hostedZoneName}`)
    } else {
      dns = { domainName, hostedZoneId, hostedZoneName }
    }
  }

  const config: GatewayConfig = {
    region,
    instanceId,
    contactFlowId,
    certificateArn,
    allowedOrigins,
    allowedAttributes,
    desiredCount,
    maxCount,
    cpuTargetPercent: int('cpuTargetPercent', 60, 10, 90),
    requestsPerTarget: int('requestsPerTarget', 1_000, 10, 1_000_000),
    waf: bool('waf', true),
    wafRateLimit: int('wafRateLimit', 300, 10, 2_000_000_000),
    logRetentionDays,
    cacheEngine: cacheEngine as GatewayConfig['cacheEngine'],
    cacheNodeType,
    natGateways: int('natGateways', 1, 1, 3),
    alarmEmail,
    customerJwtSecret,
    requireCustomerToken,
    vpc,
    environment,
    widgets,
    dns
  }
  if (problems.length > 0) {
    throw new DeployConfigError(`connect-chat-gateway: the deployment configuration is not valid:\n  ${problems.join('\n  ')}`)
  }
  return config
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
