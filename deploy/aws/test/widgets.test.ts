import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { WIDGETS_PATH } from '../lib/widgets.js'
import { actionsOf, container, containers, env, only, resourcesOf, SAMPLE, statementsOf, synth } from './helper.js'

// A WIDGETS_FILE and the widgets' secrets deployed with the stack (docs/widgets.md).

const dir = mkdtempSync(join(tmpdir(), 'ccg-widgets-'))
after(() => rmSync(dir, { recursive: true, force: true }))
function widgetsFile (content: unknown, name = 'widgets.json'): string {
  const path = join(dir, name)
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2))
  return path
}

const OTHER_INSTANCE = '00000000-0000-4000-8000-00000000000a'
const FILE = {
  widgets: [
    { id: 'sales', contactFlowId: '00000000-0000-4000-8000-0000000000f1', allowedOrigins: ['https://shop.example.com'], customerToken: { secretEnv: 'SALES_JWT_SECRET' } },
    { id: 'support', instanceId: OTHER_INSTANCE, contactFlowId: '00000000-0000-4000-8000-0000000000f2', allowedOrigins: ['https://help.example.com'] }
  ]
}
const text = (v: unknown): string => typeof v === 'string' ? v : JSON.stringify(v)

describe('a widgets file and its secrets', () => {
  const template = synth({ widgetsFile: widgetsFile(FILE), widgetSecrets: '{"SALES_JWT_SECRET":"prod/chat/sales-jwt"}' })

  it('ships the file as an SSM parameter, written by a one-shot container into a volume the gateway reads only', () => {
    const [parameterId, parameter] = only(template, 'AWS::SSM::Parameter')
    assert.deepEqual(JSON.parse(String(parameter.Properties.Value)), FILE, 'the file\'s content, as written')
    const { gateway, 'widgets-file': writer } = containers(template)
    assert.ok(gateway && writer)
    assert.equal(writer.Essential, false)
    assert.deepEqual(writer.Secrets, [{ Name: 'WIDGETS_JSON', ValueFrom: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ssm:eu-west-2:', { Ref: 'AWS::AccountId' }, ':parameter/', { Ref: parameterId }]] } }])
    assert.ok(writer.Command?.some((c) => c.includes(WIDGETS_PATH)))
    assert.deepEqual(writer.MountPoints, [{ SourceVolume: 'widgets', ContainerPath: '/etc/connect-chat-gateway', ReadOnly: false }])
    assert.deepEqual(gateway.MountPoints, [{ SourceVolume: 'widgets', ContainerPath: '/etc/connect-chat-gateway', ReadOnly: true }])
    assert.deepEqual(gateway.DependsOn, [{ ContainerName: 'widgets-file', Condition: 'SUCCESS' }], 'the gateway starts once the file is written')
    assert.equal(env(template).WIDGETS_FILE, WIDGETS_PATH)
    assert.deepEqual(text(writer.Image), text(gateway.Image), 'the gateway\'s own image')
  })

  it('a changed file is a new task definition, so cdk deploy rolls it out', () => {
    const hashOf = (t: ReturnType<typeof synth>) => (container(t, 'widgets-file').Environment ?? []).find((e) => e.Name === 'WIDGETS_FILE_SHA256')?.Value
    assert.equal(hashOf(template), createHash('sha256').update(JSON.stringify(FILE)).digest('hex'))
    const changed = { widgets: [{ ...FILE.widgets[0], allowedOrigins: ['https://new.example.com'] }, FILE.widgets[1]] }
    const other = synth({ widgetsFile: widgetsFile(changed, 'changed.json'), widgetSecrets: { SALES_JWT_SECRET: 'prod/chat/sales-jwt' } })
    assert.notEqual(hashOf(other), hashOf(template))
  })

  it('injects each secretEnv from the Secrets Manager secret of that name, never as a plain value', () => {
    const secret = (container(template).Secrets ?? []).find((s) => s.Name === 'SALES_JWT_SECRET')
    assert.ok(secret)
    assert.match(text(secret.ValueFrom), /:secret:prod\/chat\/sales-jwt/)
    assert.equal(env(template).SALES_JWT_SECRET, undefined)
  })

  it('lets the task role start chats on every widget\'s flow, on its own instance', () => {
    const [, taskDefinition] = only(template, 'AWS::ECS::TaskDefinition')
    const roleId = (taskDefinition.Properties.TaskRoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0]
    const connect = statementsOf(template, roleId).filter((s) => actionsOf(s).includes('connect:StartChatContact'))
    const resources = connect.flatMap(resourcesOf).map(text).join('\n')
    assert.match(resources, new RegExp(`instance/${SAMPLE.instanceId}/contact-flow/00000000-0000-4000-8000-0000000000f1`))
    assert.match(resources, new RegExp(`instance/${OTHER_INSTANCE}/contact-flow/00000000-0000-4000-8000-0000000000f2`))
    assert.match(resources, new RegExp(`instance/${OTHER_INSTANCE}/contact/\\*`))
  })
})

describe('widgets file problems are named at synth time', () => {
  it('a secretEnv without a secret, a secret no widget names, an unreadable file, a wrong shape', () => {
    assert.throws(() => synth({ widgetsFile: widgetsFile(FILE) }), /widgetSecrets: SALES_JWT_SECRET \(a secretEnv in the widgets file\) needs a secret/)
    assert.throws(() => synth({ widgetsFile: widgetsFile(FILE), widgetSecrets: { SALES_JWT_SECRET: 'a', OTHER_SECRET: 'b' } }), /widgetSecrets: OTHER_SECRET is named by no secretEnv/)
    assert.throws(() => synth({ widgetsFile: join(dir, 'missing.json') }), /widgetsFile: cannot read .*missing\.json as JSON/)
    assert.throws(() => synth({ widgetsFile: widgetsFile('{"profiles":[]}', 'shape.json') }), /widgetsFile: must hold \{ "widgets": \[ … \] \}/)
    assert.throws(() => synth({ widgetSecrets: { A_SECRET: 'x' } }), /widgetSecrets: only applies with widgetsFile/)
    assert.throws(() => synth({ widgetsFile: widgetsFile({ widgets: [] }, 'empty.json'), widgetSecrets: { RESUME_TOKEN_SECRET: 'x' } }), /widgetSecrets: RESUME_TOKEN_SECRET is set by this app/)
  })

  it('a file too large for a parameter', () => {
    const big = { widgets: [{ id: 'big', contactFlowId: 'f', attributes: { note: 'x'.repeat(9000) } }] }
    assert.throws(() => synth({ widgetsFile: widgetsFile(big, 'big.json') }), /widgetsFile: is \d+ bytes minified; an SSM parameter holds 8192/)
  })

  it('without widgetsFile nothing of it is deployed', () => {
    const template = synth()
    template.resourceCountIs('AWS::SSM::Parameter', 0)
    assert.equal(containers(template)['widgets-file'], undefined)
    assert.equal(env(template).WIDGETS_FILE, undefined)
  })
})
