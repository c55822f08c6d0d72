import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import * as ecs from 'aws-cdk-lib/aws-ecs'
import * as iam from 'aws-cdk-lib/aws-iam'
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager'
import * as ssm from 'aws-cdk-lib/aws-ssm'
import type { Construct } from 'constructs'
import { instanceArn } from './connect-access.js'

// Several widgets from one deployment (docs/widgets.md): the WIDGETS_FILE travels as an SSM parameter,
// a one-shot container of the same image writes it into a volume the gateway reads, and each
// widget's `secretEnv` comes from a Secrets Manager secret named in the deployment's context.

/** Where the gateway container finds the file. */
export const WIDGETS_DIR = '/etc/connect-chat-gateway'
export const WIDGETS_PATH = `${WIDGETS_DIR}/widgets.json`
/** SSM's advanced tier holds 8 KB; the standard tier 4 KB. */
const STANDARD_TIER_BYTES = 4096
const ADVANCED_TIER_BYTES = 8192
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/
const SECRET_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/

export interface WidgetsDeployment {
  /** The file, minified: what the parameter holds. */
  json: string
  sha256: string
  /** Each widget's contact flow and instance (undefined: the deployment's instance). */
  flows: Array<{ instanceId?: string; contactFlowId: string }>
  /** Environment variable named by a `secretEnv` -> the Secrets Manager secret's name. */
  secrets: Record<string, string>
}

/** Every `secretEnv` anywhere in a widget profile (customer tokens, human checks, …). */
function secretEnvs (value: unknown, found = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const v of value) secretEnvs(v, found)
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'secretEnv' && typeof v === 'string') found.add(v)
      else secretEnvs(v, found)
    }
  }
  return found
}

/**
 * Reads the widgets file (relative to the directory `cdk` runs in) and checks what the deployment
 * depends on: its shape as far as the stack uses it, its size, and that every `secretEnv` has a
 * secret and every secret a `secretEnv`. The service checks the rest when it starts; a task that
 * refuses the file fails its deployment, which the circuit breaker rolls back.
 */
export function readWidgets (
  file: string | undefined, rawSecrets: unknown, reservedEnv: ReadonlySet<string>, problem: (key: 'widgetsFile' | 'widgetSecrets', text: string) => void
): WidgetsDeployment | undefined {
  const secrets: Record<string, string> = {}
  if (rawSecrets !== undefined && rawSecrets !== null && rawSecrets !== '') {
    if (typeof rawSecrets !== 'object' || Array.isArray(rawSecrets)) problem('widgetSecrets', 'must be an object of environment variable name to secret name')
    else {
      for (const [env, name] of Object.entries(rawSecrets)) {
        if (!ENV_NAME.test(env)) problem('widgetSecrets', `"${env}" is not an environment variable name`)
        else if (reservedEnv.has(env)) problem('widgetSecrets', `${env} is set by this app`)
        else if (typeof name !== 'string' || !SECRET_NAME.test(name)) problem('widgetSecrets', `${env}: ${JSON.stringify(name)} is not a Secrets Manager secret name`)
        else secrets[env] = name
      }
    }
  }
  if (file === undefined) {
    if (Object.keys(secrets).length > 0) problem('widgetSecrets', 'only applies with widgetsFile')
    return undefined
  }

  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(resolve(file), 'utf8'))
  } catch (err) {
    problem('widgetsFile', `cannot read ${resolve(file)} as JSON (${(err as Error).message.slice(0, 200)})`)
    return undefined
  }
  const widgets = (parsed as { widgets?: unknown } | null)?.widgets
  if (!Array.isArray(widgets)) {
    problem('widgetsFile', 'must hold { "widgets": [ … ] } (docs/widgets.md)')
    return undefined
  }
  const flows: WidgetsDeployment['flows'] = []
  for (const [i, w] of widgets.entries()) {
    const profile = w as { id?: unknown; contactFlowId?: unknown; instanceId?: unknown }
    if (typeof profile?.id !== 'string' || typeof profile.contactFlowId !== 'string') {
      problem('widgetsFile', `widgets[${i}] needs an id and a contactFlowId`)
      continue
    }
    flows.push({ contactFlowId: profile.contactFlowId, ...(typeof profile.instanceId === 'string' ? { instanceId: profile.instanceId } : {}) })
  }
  const named = secretEnvs(widgets)
  for (const env of named) if (!(env in secrets)) problem('widgetSecrets', `${env} (a secretEnv in the widgets file) needs a secret: -c widgetSecrets='{"${env}":"<secret name>"}'`)
  for (const env of Object.keys(secrets)) if (!named.has(env)) problem('widgetSecrets', `${env} is named by no secretEnv in the widgets file`)

  const json = JSON.stringify(parsed)
  if (Buffer.byteLength(json) > ADVANCED_TIER_BYTES) problem('widgetsFile', `is ${Buffer.byteLength(json)} bytes minified; an SSM parameter holds ${ADVANCED_TIER_BYTES}`)
  return { json, sha256: createHash('sha256').update(json).digest('hex'), flows, secrets }
}

export interface WidgetsWiring {
  widgets: WidgetsDeployment
  taskDefinition: ecs.FargateTaskDefinition
  gateway: ecs.ContainerDefinition
  image: ecs.ContainerImage
  taskRole: iam.IRole
  region: string
  /** The deployment's own instance: widgets without an instanceId use it. */
  instanceId: string
  logging: ecs.LogDriver
}

/** Ships the widgets file and the widgets' secrets to the gateway container. */
export function addWidgets (scope: Construct, w: WidgetsWiring): ssm.StringParameter {
  const parameter = new ssm.StringParameter(scope, 'WidgetsFile', {
    description: 'connect-chat-gateway WIDGETS_FILE (docs/widgets.md); written by cdk deploy from the widgetsFile context value',
    stringValue: w.widgets.json,
    tier: Buffer.byteLength(w.widgets.json) > STANDARD_TIER_BYTES ? ssm.ParameterTier.ADVANCED : ssm.ParameterTier.STANDARD
  })

  // ECS cannot put a file into a container, only variables: a one-shot container of the same image
  // writes the parameter into a task-local volume before the gateway starts. The hash makes a changed
  // file a new task definition, so `cdk deploy` rolls it out (SIGHUP is for hosts with a real file).
  w.taskDefinition.addVolume({ name: 'widgets' })
  const writer = w.taskDefinition.addContainer('widgets-file', {
    image: w.image,
    essential: false,
    // The volume starts root-owned; the file it writes is read-only to everyone.
    user: '0',
    command: ['node', '-e', `require('node:fs').writeFileSync(${JSON.stringify(WIDGETS_PATH)}, process.env.WIDGETS_JSON, { mode: 0o444 })`],
    environment: { WIDGETS_FILE_SHA256: w.widgets.sha256 },
    secrets: { WIDGETS_JSON: ecs.Secret.fromSsmParameter(parameter) },
    logging: w.logging
  })
  writer.addMountPoints({ sourceVolume: 'widgets', containerPath: WIDGETS_DIR, readOnly: false })
  w.gateway.addMountPoints({ sourceVolume: 'widgets', containerPath: WIDGETS_DIR, readOnly: true })
  w.gateway.addContainerDependencies({ container: writer, condition: ecs.ContainerDependencyCondition.SUCCESS })
  w.gateway.addEnvironment('WIDGETS_FILE', WIDGETS_PATH)

  for (const [env, name] of Object.entries(w.widgets.secrets)) {
    const secret = secretsmanager.Secret.fromSecretNameV2(scope, `WidgetSecret${env}`, name)
    w.gateway.addSecret(env, ecs.Secret.fromSecretsManager(secret))
  }

  const flows = widgetFlowsStatement(w.widgets, w.region, w.instanceId)
  if (flows) w.taskRole.addToPrincipalPolicy(flows)
  return parameter
}

/** StartChatContact on each widget's flow, on its own instance or the deployment's. */
export function widgetFlowsStatement (widgets: WidgetsDeployment, region: string, instanceId: string): iam.PolicyStatement | undefined {
  const resources = new Set<string>()
  for (const flow of widgets.flows) {
    const instance = instanceArn(region, flow.instanceId ?? instanceId)
    resources.add(`${instance}/contact/*`)
    resources.add(`${instance}/contact-flow/${flow.contactFlowId}`)
  }
  if (resources.size === 0) return undefined
  return new iam.PolicyStatement({ sid: 'StartChatContactForWidgets', actions: ['connect:StartChatContact'], resources: [...resources] })
}
