import { Duration, RemovalPolicy } from 'aws-cdk-lib'
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch'
import type * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions'
import * as ecs from 'aws-cdk-lib/aws-ecs'
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2'
import * as iam from 'aws-cdk-lib/aws-iam'
import * as logs from 'aws-cdk-lib/aws-logs'
import type { Construct } from 'constructs'

// The service's own Prometheus metrics (docs/operations.md) in CloudWatch, a dashboard, and the
// alarms built on them. Every alarm names its entry in docs/runbook.md.

/** Pinned: a collector upgrade is a deliberate change, not a side effect of a deploy. */
export const COLLECTOR_IMAGE = 'public.ecr.aws/aws-observability/aws-otel-collector:v0.40.0'
export const RUNBOOK = 'docs/runbook.md'
export const FIVE_MINUTES = Duration.minutes(5)

/** The alarm description with its runbook entry: `anchor` is a heading of docs/runbook.md. */
export function withRunbook (text: string, anchor: string): string {
  return `${text} Runbook: ${RUNBOOK}#${anchor}`
}

/** A count of the service's JSON log lines matching `pattern`, per 5 minutes, as a metric of `namespace`. */
export function logMetric (scope: Construct, id: string, o: { logGroup: logs.ILogGroup; namespace: string; metricName: string; pattern: logs.IFilterPattern }): cloudwatch.Metric {
  return new logs.MetricFilter(scope, id, {
    logGroup: o.logGroup,
    filterPattern: o.pattern,
    metricNamespace: o.namespace,
    metricName: o.metricName,
    metricValue: '1',
    unit: cloudwatch.Unit.COUNT
  }).metric({ statistic: 'Sum', period: FIVE_MINUTES })
}

/**
 * Alarms on answers the service logs with their `code` (src/plugins/error-handler.ts), counted from
 * its log group: they need no metrics pipeline, so both deployments have them.
 */
export function addLogCodeAlarms (scope: Construct, logGroup: logs.ILogGroup, namespace: string): cloudwatch.Alarm[] {
  const codeMetric = (id: string, code: string, metricName: string) =>
    logMetric(scope, id, { logGroup, namespace, metricName, pattern: logs.FilterPattern.stringValue('$.code', '=', code) })
  const atLeast = (id: string, alarmDescription: string, metric: cloudwatch.IMetric, threshold: number) => new cloudwatch.Alarm(scope, id, {
    alarmDescription,
    metric,
    threshold,
    evaluationPeriods: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING
  })
  return [
    atLeast('ChatQuotaReachedAlarm',
      withRunbook('Connect\'s concurrent-chat quota is full: customers are refused with 503 CHAT_QUOTA_REACHED. Raise the quota or add agents.', 'chat-quota-reached'),
      codeMetric('ChatQuotaReachedFilter', 'CHAT_QUOTA_REACHED', 'ChatQuotaReached'), 1),
    atLeast('ChatCapacityReservedAlarm',
      withRunbook('Anonymous callers hold their whole share of the chat quota: guests get 503 CHAT_CAPACITY_RESERVED. A bot flood (check WAF and HUMAN_CHECK) or real demand (raise the Connect quota and CONNECT_MAX_ACTIVE_CHATS).', 'chat-capacity-reserved'),
      codeMetric('ChatCapacityReservedFilter', 'CHAT_CAPACITY_RESERVED', 'ChatCapacityReserved'), 10),
    atLeast('UpstreamThrottledAlarm',
      withRunbook('Connect throttled StartChatContact past our retries: customers got 503 UPSTREAM_THROTTLED. Raise the API quota or set CONNECT_RATE_LIMIT.', 'upstream-throttled'),
      codeMetric('UpstreamThrottledFilter', 'UPSTREAM_THROTTLED', 'UpstreamThrottled'), 5)
  ]
}

/** The Prometheus series worth keeping in CloudWatch, and the labels that become dimensions. */
const EXPORTED: Array<{ metric: string; dimensions: string[][] }> = [
  { metric: 'ccg_chat_starts_total', dimensions: [['outcome']] },
  { metric: 'ccg_chat_start_duration_seconds', dimensions: [['outcome']] },
  { metric: 'ccg_upstream_errors_total', dimensions: [['type']] },
  { metric: 'ccg_upstream_retries_total', dimensions: [['error']] },
  { metric: 'ccg_live_chats', dimensions: [[]] },
  { metric: 'ccg_pacing_rate', dimensions: [[]] },
  { metric: 'ccg_pacing_shed_total', dimensions: [[]] },
  { metric: 'ccg_rate_limited_total', dimensions: [[]] },
  { metric: 'ccg_origin_refused_total', dimensions: [[]] }
]

/**
 * The AWS Distro for OpenTelemetry collector beside the gateway: it scrapes the metrics port
 * (localhost inside the task) every minute and writes the series above to CloudWatch as embedded
 * metric format logs, with their zero-dimension totals for alarms.
 */
export function addMetricsCollector (scope: Construct, o: {
  taskDefinition: ecs.FargateTaskDefinition; namespace: string; metricsPort: number; logging: ecs.LogDriver; retention: logs.RetentionDays
}): logs.LogGroup {
  const emfLogs = new logs.LogGroup(scope, 'MetricsLogs', { retention: o.retention, removalPolicy: RemovalPolicy.DESTROY })
  const keep = EXPORTED.map((e) => e.metric.replace(/_total$/, '')).join('|')
  const config = {
    receivers: {
      prometheus: {
        config: {
          scrape_configs: [{
            job_name: 'connect-chat-gateway',
            scrape_interval: '60s',
            static_configs: [{ targets: [`127.0.0.1:${o.metricsPort}`] }],
            metric_relabel_configs: [{ source_labels: ['__name__'], regex: `(${keep})(_total|_sum|_count|_bucket)?`, action: 'keep' }]
          }]
        }
      }
    },
    exporters: {
      awsemf: {
        namespace: o.namespace,
        log_group_name: emfLogs.logGroupName,
        dimension_rollup_option: 'ZeroAndSingleDimensionRollup',
        metric_declarations: EXPORTED.map((e) => ({ dimensions: e.dimensions, metric_name_selectors: [`^${e.metric}$`] }))
      }
    },
    service: { pipelines: { metrics: { receivers: ['prometheus'], exporters: ['awsemf'] } } }
  }
  o.taskDefinition.addContainer('metrics-collector', {
    image: ecs.ContainerImage.fromRegistry(COLLECTOR_IMAGE),
    // Not essential: losing metrics must not take chat starts down with it.
    essential: false,
    memoryReservationMiB: 64,
    // The collector reads its configuration from this variable (YAML; JSON is YAML).
    environment: { AOT_CONFIG_CONTENT: JSON.stringify(config) },
    logging: o.logging
  })
  o.taskDefinition.taskRole.addToPrincipalPolicy(new iam.PolicyStatement({
    sid: 'MetricsAsEmbeddedMetricFormatLogs',
    actions: ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
    resources: [emfLogs.logGroupArn, `${emfLogs.logGroupArn}:*`]
  }))
  return emfLogs
}

export interface ObservedParts {
  namespace: string
  service: ecs.FargateService
  alb: elbv2.ApplicationLoadBalancer
  targetGroup: elbv2.ApplicationTargetGroup
  notify: cwActions.SnsAction
  /** CONNECT_MAX_ACTIVE_CHATS as deployed: live chats are alarmed at 80% of it. */
  maxActiveChats: number
}

/** The alarms on the collected metrics and the tasks' resources. */
export function addServiceAlarms (scope: Construct, p: ObservedParts): cloudwatch.Alarm[] {
  const own = (metricName: string, statistic: string) => new cloudwatch.Metric({ namespace: p.namespace, metricName, statistic, period: FIVE_MINUTES })
  // Above 85% for 15 minutes: autoscaling (on CPU) is at maxCount or not keeping up.
  const taskAlarm = (id: string, what: string, metric: cloudwatch.IMetric, anchor: string) => new cloudwatch.Alarm(scope, id, {
    alarmDescription: withRunbook(`The tasks' average ${what} stayed above 85% for 15 minutes.`, anchor),
    metric,
    threshold: 85,
    evaluationPeriods: 3,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    treatMissingData: cloudwatch.TreatMissingData.MISSING
  })
  const alarms = [
    new cloudwatch.Alarm(scope, 'UpstreamErrorsAlarm', {
      alarmDescription: withRunbook('Chat starts failed upstream (Connect refused our configuration, 5xx, network) 10 times or more in 5 minutes.', 'upstream-errors'),
      metric: own('ccg_upstream_errors_total', 'Sum'),
      threshold: 10,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING
    }),
    new cloudwatch.Alarm(scope, 'LiveChatsHighAlarm', {
      alarmDescription: withRunbook(`Live chats reached 80% of CONNECT_MAX_ACTIVE_CHATS (${p.maxActiveChats}) for 10 minutes.`, 'live-chats-high'),
      metric: own('ccg_live_chats', 'Maximum'),
      threshold: Math.ceil(p.maxActiveChats * 0.8),
      evaluationPeriods: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING
    }),
    taskAlarm('TaskCpuHighAlarm', 'CPU', p.service.metricCpuUtilization({ statistic: 'Average', period: FIVE_MINUTES }), 'task-cpu-high'),
    taskAlarm('TaskMemoryHighAlarm', 'memory', p.service.metricMemoryUtilization({ statistic: 'Average', period: FIVE_MINUTES }), 'task-memory-high')
  ]
  for (const alarm of alarms) alarm.addAlarmAction(p.notify)
  return alarms
}

/** One dashboard for the on-call: starts, refusals, Connect, live chats, pacing, the tasks, the alarms. */
export function addDashboard (scope: Construct, p: ObservedParts & { alarms: cloudwatch.IAlarm[]; dashboardName?: string }): cloudwatch.Dashboard {
  const ns = p.namespace
  // SEARCH finds every value a label takes (each refusal code, each upstream error type) without
  // listing them here: a new code shows up on the dashboard on its own.
  const search = (label: string, expression: string, statistic: string) => new cloudwatch.MathExpression({
    expression: `SEARCH('${expression}', '${statistic}', 300)`, label, period: FIVE_MINUTES, usingMetrics: {}
  })
  const own = (metricName: string, statistic: string, label: string) => new cloudwatch.Metric({ namespace: ns, metricName, statistic, period: FIVE_MINUTES, label })
  const graph = (title: string, left: cloudwatch.IMetric[], width = 8) => new cloudwatch.GraphWidget({ title, left, width, height: 6 })

  const dashboard = new cloudwatch.Dashboard(scope, 'Dashboard', { ...(p.dashboardName ? { dashboardName: p.dashboardName } : {}), defaultInterval: Duration.hours(3) })
  dashboard.addWidgets(
    graph('Chat starts by outcome', [search('starts', `{${ns},outcome} MetricName="ccg_chat_starts_total"`, 'Sum')]),
    graph('Refusals by code', [search('refusals', `{${ns},outcome} MetricName="ccg_chat_starts_total" NOT outcome="started"`, 'Sum')]),
    graph('Live chats (deployment)', [own('ccg_live_chats', 'Maximum', 'live chats')])
  )
  dashboard.addWidgets(
    graph('Chat start time (pacing and retries included)', [
      search('average by outcome', `{${ns},outcome} MetricName="ccg_chat_start_duration_seconds"`, 'Average'),
      p.alb.metrics.targetResponseTime({ statistic: 'p99', period: FIVE_MINUTES, label: 'load balancer p99 (s)' })
    ]),
    graph('Upstream errors and retries', [
      search('errors', `{${ns},type} MetricName="ccg_upstream_errors_total"`, 'Sum'),
      search('retries', `{${ns},error} MetricName="ccg_upstream_retries_total"`, 'Sum')
    ]),
    graph('Pacing rate (calls/s aimed at)', [own('ccg_pacing_rate', 'Maximum', 'pacing rate'), own('ccg_pacing_shed_total', 'Sum', 'shed (503 at once)')])
  )
  dashboard.addWidgets(
    graph('Task CPU and memory (%)', [
      p.service.metricCpuUtilization({ statistic: 'Average', period: FIVE_MINUTES, label: 'CPU average' }),
      p.service.metricCpuUtilization({ statistic: 'Maximum', period: FIVE_MINUTES, label: 'CPU max' }),
      p.service.metricMemoryUtilization({ statistic: 'Average', period: FIVE_MINUTES, label: 'memory average' })
    ]),
    graph('Load balancer', [
      p.alb.metrics.requestCount({ statistic: 'Sum', period: FIVE_MINUTES, label: 'requests' }),
      p.alb.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, { statistic: 'Sum', period: FIVE_MINUTES, label: 'task 5xx' }),
      p.targetGroup.metrics.unhealthyHostCount({ statistic: 'Maximum', period: FIVE_MINUTES, label: 'unhealthy tasks' })
    ]),
    new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: p.alarms, width: 8, height: 6 })
  )
  return dashboard
}
