import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Match } from 'aws-cdk-lib/assertions'
import { COLLECTOR_IMAGE } from '../lib/observability.js'
import { containers, only, statementsOf, actionsOf, synth } from './helper.js'

// The dashboard, the alarms and their runbook, the metrics collector and the optional DNS record.

const RUNBOOK = readFileSync(fileURLToPath(new URL('../../../docs/runbook.md', import.meta.url)), 'utf8')
/** The runbook's entries by GitHub's anchor for their heading. */
const entries = new Map(RUNBOOK.split(/^## /m).slice(1).map((section) => {
  const heading = section.slice(0, section.indexOf('\n')).trim()
  return [heading.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-'), section] as const
}))

describe('operations with the sample configuration', () => {
  const template = synth({ environment: { CONNECT_MAX_ACTIVE_CHATS: '50' } })
  const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as Array<{ Properties: Record<string, any> }>

  it('every alarm links an entry of docs/runbook.md that exists, with what it means, what to check, what to do', () => {
    assert.ok(alarms.length >= 8)
    for (const alarm of alarms) {
      const description = String(alarm.Properties.AlarmDescription)
      const [, anchor] = /Runbook: docs\/runbook\.md#([a-z0-9-]+)$/.exec(description) ?? []
      assert.ok(anchor, `"${description}" links the runbook`)
      const entry = entries.get(anchor)
      assert.ok(entry, `docs/runbook.md has a heading for #${anchor}`)
      for (const part of ['**Means:**', '**Check:**', '**Do:**']) assert.ok(entry.includes(part), `#${anchor} says ${part}`)
    }
  })

  it('alarms on upstream errors, live chats at 80% of CONNECT_MAX_ACTIVE_CHATS, task CPU and memory', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ccg_upstream_errors_total', Namespace: 'ConnectChatGateway', Statistic: 'Sum', Threshold: 10 })
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ccg_live_chats', Statistic: 'Maximum', Threshold: 40 })
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'CPUUtilization', Namespace: 'AWS/ECS', Threshold: 85 })
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'MemoryUtilization', Namespace: 'AWS/ECS', Threshold: 85 })
  })

  it('draws one dashboard with starts by outcome, refusals by code, upstream latency and errors, live chats, pacing, CPU and memory, and every alarm', () => {
    const [, dashboard] = only(template, 'AWS::CloudWatch::Dashboard')
    const body = JSON.stringify(dashboard.Properties.DashboardBody)
    for (const title of ['Chat starts by outcome', 'Refusals by code', 'Chat start time', 'Upstream errors and retries', 'Live chats', 'Pacing rate', 'Task CPU and memory', 'Alarms']) {
      assert.ok(body.includes(title), `a widget "${title}"`)
    }
    for (const metric of ['ccg_chat_starts_total', 'NOT outcome=\\\\\\"started\\\\\\"', 'ccg_chat_start_duration_seconds', 'TargetResponseTime', 'ccg_upstream_errors_total', 'ccg_live_chats', 'ccg_pacing_rate', 'CPUUtilization', 'MemoryUtilization']) {
      assert.ok(body.includes(metric), `the dashboard reads ${metric}`)
    }
    const alarmIds = Object.keys(template.findResources('AWS::CloudWatch::Alarm'))
    for (const id of alarmIds) assert.ok(body.includes(id), `the alarm widget shows ${id}`)
  })

  it('a collector beside the gateway scrapes its metrics port and writes the series to CloudWatch; it cannot stop the task', () => {
    const collector = containers(template)['metrics-collector']!
    assert.equal(collector.Image, COLLECTOR_IMAGE)
    assert.equal(collector.Essential, false)
    // The log group's name is a reference inside the JSON: CloudFormation joins it in.
    const value = (collector.Environment ?? []).find((e) => e.Name === 'AOT_CONFIG_CONTENT')?.Value as { 'Fn::Join': [string, unknown[]] }
    const config = JSON.parse(value['Fn::Join'][1].map((p) => typeof p === 'string' ? p : 'LOG_GROUP').join(''))
    assert.deepEqual(config.receivers.prometheus.config.scrape_configs[0].static_configs, [{ targets: ['127.0.0.1:9464'] }])
    assert.equal(config.exporters.awsemf.namespace, 'ConnectChatGateway')
    assert.equal(config.exporters.awsemf.log_group_name, 'LOG_GROUP')
    const selectors = config.exporters.awsemf.metric_declarations.flatMap((d: { metric_name_selectors: string[] }) => d.metric_name_selectors)
    for (const name of ['ccg_chat_starts_total', 'ccg_upstream_errors_total', 'ccg_live_chats', 'ccg_pacing_rate']) assert.ok(selectors.includes(`^${name}$`))

    const [, taskDefinition] = only(template, 'AWS::ECS::TaskDefinition')
    const roleId = (taskDefinition.Properties.TaskRoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0]
    const logs = statementsOf(template, roleId).filter((s) => actionsOf(s).some((a) => a.startsWith('logs:')))
    assert.equal(logs.length, 1)
    assert.deepEqual([...actionsOf(logs[0]!)].sort(), ['logs:CreateLogStream', 'logs:DescribeLogStreams', 'logs:PutLogEvents'])
    const emfGroupId = Object.entries(template.findResources('AWS::Logs::LogGroup')).find(([, g]) => g.DeletionPolicy !== 'Retain')![0]
    assert.match(JSON.stringify(logs[0]!.Resource), new RegExp(emfGroupId), 'only on the collector\'s own log group')
  })

  it('makes no DNS record unless asked', () => {
    template.resourceCountIs('AWS::Route53::RecordSet', 0)
  })
})

describe('the optional Route 53 alias record', () => {
  it('points domainName at the load balancer in the given zone, without a lookup', () => {
    const template = synth({ domainName: 'chat.example.com', hostedZoneId: 'Z0123456789ABCDEFGHIJ', hostedZoneName: 'example.com' })
    template.hasResourceProperties('AWS::Route53::RecordSet', {
      Name: 'chat.example.com.',
      Type: 'A',
      HostedZoneId: 'Z0123456789ABCDEFGHIJ',
      AliasTarget: { DNSName: Match.anyValue(), HostedZoneId: { 'Fn::GetAtt': [Match.stringLikeRegexp('LoadBalancer'), 'CanonicalHostedZoneID'] } }
    })
    template.hasOutput('ServiceUrl', { Value: 'https://chat.example.com' })
  })

  it('refuses a name outside the zone, a malformed zone id, or a partial set', () => {
    assert.throws(() => synth({ domainName: 'chat.example.org', hostedZoneId: 'Z0123456789ABCDEFGHIJ', hostedZoneName: 'example.com' }), /domainName: "chat.example.org" is not in the hosted zone example.com/)
    assert.throws(() => synth({ domainName: 'chat.example.com', hostedZoneId: 'zone-1', hostedZoneName: 'example.com' }), /hostedZoneId: "zone-1" is not a hosted zone id/)
    assert.throws(() => synth({ domainName: 'chat.example.com' }), /needs domainName, hostedZoneId and hostedZoneName together/)
  })
})
