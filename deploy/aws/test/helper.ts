import { App } from 'aws-cdk-lib'
import { Template } from 'aws-cdk-lib/assertions'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after } from 'node:test'
import { addGatewayStack } from '../lib/app.js'

export const SAMPLE = {
  region: 'eu-west-2',
  instanceId: '00000000-0000-4000-8000-000000000001',
  contactFlowId: '00000000-0000-4000-8000-000000000002',
  certificateArn: 'arn:aws:acm:eu-west-2:111111111111:certificate/00000000-0000-4000-8000-000000000003',
  allowedOrigins: 'https://www.example.com,https://shop.example.com',
  allowedAttributes: 'topic,locale'
}

const outdirs: string[] = []
after(() => { for (const dir of outdirs) rmSync(dir, { recursive: true, force: true }) })

/** The stack synthesised from SAMPLE plus `context`, as a CloudFormation template. */
export function synth (context: Record<string, unknown> = {}): Template {
  const outdir = mkdtempSync(join(tmpdir(), 'ccg-cdk-'))
  outdirs.push(outdir)
  const app = new App({ outdir, context: { ...SAMPLE, ...context } })
  return Template.fromStack(addGatewayStack(app))
}

type Resource = { Type: string; Properties: Record<string, unknown> }

/** The one resource of `type` (fails when there is not exactly one). */
export function only (template: Template, type: string): [string, Resource] {
  const found = Object.entries(template.findResources(type)) as Array<[string, Resource]>
  if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`)
  return found[0]!
}

export interface ContainerDefinition {
  Name: string
  Environment?: Array<{ Name: string; Value: unknown }>
  Secrets?: Array<{ Name: string; ValueFrom: unknown }>
  HealthCheck?: { Command: string[] }
  Essential?: boolean
  User?: string
  Image?: unknown
  Command?: string[]
  MountPoints?: Array<{ SourceVolume: string; ContainerPath: string; ReadOnly: boolean }>
  DependsOn?: Array<{ ContainerName: string; Condition: string }>
}

/** Every container of the task, by name: the gateway and its helpers. */
export function containers (template: Template): Record<string, ContainerDefinition> {
  const [, taskDefinition] = only(template, 'AWS::ECS::TaskDefinition')
  return Object.fromEntries((taskDefinition.Properties.ContainerDefinitions as ContainerDefinition[]).map((c) => [c.Name, c]))
}

/** The gateway's container. */
export function container (template: Template, name = 'gateway'): ContainerDefinition {
  const found = containers(template)[name]
  if (!found) throw new Error(`no container ${name}`)
  return found
}

export function env (template: Template): Record<string, unknown> {
  return Object.fromEntries((container(template).Environment ?? []).map((e) => [e.Name, e.Value]))
}

interface Statement { Effect: string; Action: string | string[]; Resource: unknown }

/** Every policy statement attached to the role with logical id `roleId`, inline or separate. */
export function statementsOf (template: Template, roleId: string): Statement[] {
  const statements: Statement[] = []
  for (const policy of Object.values(template.findResources('AWS::IAM::Policy')) as Resource[]) {
    const roles = policy.Properties.Roles as Array<{ Ref: string }>
    if (roles.some((r) => r.Ref === roleId)) statements.push(...(policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement)
  }
  const [, role] = Object.entries(template.findResources('AWS::IAM::Role')).find(([id]) => id === roleId) as [string, Resource]
  for (const inline of (role.Properties.Policies as Array<{ PolicyDocument: { Statement: Statement[] } }> | undefined) ?? []) {
    statements.push(...inline.PolicyDocument.Statement)
  }
  return statements
}

export const actionsOf = (s: Statement) => Array.isArray(s.Action) ? s.Action : [s.Action]
export const resourcesOf = (s: Statement) => Array.isArray(s.Resource) ? s.Resource : [s.Resource]

/** A stand-in for `npm run build:lambda`'s output: the stack only stages it. */
export const LAMBDA_FIXTURE = (() => {
  const dir = mkdtempSync(join(tmpdir(), 'ccg-lambda-asset-'))
  outdirs.push(dir)
  writeFileSync(join(dir, 'index.mjs'), 'export const handler = async () => ({ statusCode: 204 })\n')
  return dir
})()

/** SAMPLE in the serverless mode (no certificate: the HTTP API's own endpoint), plus `context`. */
export const LAMBDA_SAMPLE: Record<string, unknown> = { ...SAMPLE, certificateArn: undefined, mode: 'lambda', lambdaAsset: LAMBDA_FIXTURE }

export function synthLambda (context: Record<string, unknown> = {}): Template {
  return synth({ ...LAMBDA_SAMPLE, ...context })
}
