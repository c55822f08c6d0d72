import { Duration } from 'aws-cdk-lib'
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2'
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch'
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb'
import type * as lambda from 'aws-cdk-lib/aws-lambda'
import * as logs from 'aws-cdk-lib/aws-logs'
import type { Construct } from 'constructs'
import { addLogCodeAlarms, FIVE_MINUTES, logMetric, withRunbook } from './observability.js'

// The serverless deployment's alarms and dashboard. There is no metrics port to scrape here, so
// the service's own numbers come from its log lines (their `code`); the rest is what Lambda, API
// Gateway and DynamoDB report themselves. Every alarm names its entry in docs/runbook.md.

export interface LambdaParts {
  namespace: string
  fn: lambda.Function
  api: apigwv2.HttpApi
  table: dynamodb.Table
  logGroup: logs.ILogGroup
  timeoutSeconds: number
  reservedConcurrency?: number
}

const alarm = (scope: Construct, id: string, props: cloudwatch.AlarmProps) => new cloudwatch.Alarm(scope, id, {
  comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
  treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  ...props
})

/** Upstream failures the service logged (`chat start failed upstream`), throttling aside. */
function upstreamErrors (scope: Construct, p: LambdaParts): cloudwatch.Metric {
  return logMetric(scope, 'UpstreamErrorsFilter', {
    logGroup: p.logGroup,
    namespace: p.namespace,
    metricName: 'UpstreamErrors',
    pattern: logs.FilterPattern.any(
      logs.FilterPattern.stringValue('$.code', '=', 'UPSTREAM_FAILED'),
      logs.FilterPattern.stringValue('$.code', '=', 'UPSTREAM_MISCONFIGURED')
    )
  })
}

export function addLambdaAlarms (scope: Construct, p: LambdaParts): cloudwatch.Alarm[] {
  const timeoutMs = p.timeoutSeconds * 1000
  return [
    ...addLogCodeAlarms(scope, p.logGroup, p.namespace),
    alarm(scope, 'UpstreamErrorsAlarm', {
      alarmDescription: withRunbook('Chat starts failed upstream (Connect refused our configuration, 5xx, network) 10 times or more in 5 minutes.', 'upstream-errors'),
      metric: upstreamErrors(scope, p),
      threshold: 10,
      evaluationPeriods: 1
    }),
    alarm(scope, 'FunctionErrorsAlarm', {
      alarmDescription: withRunbook('The function failed 5 times or more in 5 minutes (crashed, timed out or could not start): callers got an error from API Gateway instead of the service\'s answer.', 'function-errors'),
      metric: p.fn.metricErrors({ statistic: 'Sum', period: FIVE_MINUTES }),
      threshold: 5,
      evaluationPeriods: 1
    }),
    alarm(scope, 'FunctionThrottlesAlarm', {
      alarmDescription: withRunbook(`Lambda refused invocations for want of concurrency (${p.reservedConcurrency === undefined ? 'the account\'s unreserved pool' : `reserved ${p.reservedConcurrency}`}): callers got an error from API Gateway.`, 'function-throttles'),
      metric: p.fn.metricThrottles({ statistic: 'Sum', period: FIVE_MINUTES }),
      threshold: 1,
      evaluationPeriods: 1
    }),
    alarm(scope, 'FunctionDurationHighAlarm', {
      alarmDescription: withRunbook(`The function's p99 duration stayed above 80% of its ${p.timeoutSeconds} s timeout for 15 minutes.`, 'function-duration-high'),
      metric: p.fn.metricDuration({ statistic: 'p99', period: FIVE_MINUTES }),
      threshold: Math.round(timeoutMs * 0.8),
      evaluationPeriods: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
    }),
    alarm(scope, 'StateTableThrottledAlarm', {
      alarmDescription: withRunbook('DynamoDB throttled reads or writes on the state table 5 times or more in 5 minutes: requests that needed it may have been refused with 503 STATE_UNAVAILABLE.', 'state-table-throttled'),
      metric: new cloudwatch.MathExpression({
        expression: 'FILL(reads, 0) + FILL(writes, 0)',
        usingMetrics: {
          reads: p.table.metric('ReadThrottleEvents', { statistic: 'Sum' }),
          writes: p.table.metric('WriteThrottleEvents', { statistic: 'Sum' })
        },
        period: FIVE_MINUTES,
        label: 'throttle events'
      }),
      threshold: 5,
      evaluationPeriods: 1
    }),
    alarm(scope, 'Api5xxRateAlarm', {
      alarmDescription: withRunbook('More than 5% of the HTTP API\'s requests answered 5xx (by the service or API Gateway) for 10 minutes.', 'api-5xx-rate'),
      metric: new cloudwatch.MathExpression({
        expression: 'IF(requests > 0, 100 * FILL(errors, 0) / requests, 0)',
        usingMetrics: { requests: p.api.metricCount({ statistic: 'Sum' }), errors: p.api.metricServerError({ statistic: 'Sum' }) },
        period: FIVE_MINUTES,
        label: '5xx %'
      }),
      threshold: 5,
      evaluationPeriods: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
    })
  ]
}

/** One dashboard for the on-call: requests and refusals, the function, the table, every alarm. */
export function addLambdaDashboard (scope: Construct, p: LambdaParts & { alarms: cloudwatch.IAlarm[] }): cloudwatch.Dashboard {
  const graph = (title: string, left: cloudwatch.IMetric[], right: cloudwatch.IMetric[] = []) =>
    new cloudwatch.GraphWidget({ title, left, right, width: 8, height: 6 })
  const fromLogs = (metricName: string, label: string) => new cloudwatch.Metric({ namespace: p.namespace, metricName, statistic: 'Sum', period: FIVE_MINUTES, label })
  const fn = (metric: string, statistic: string, label: string) => p.fn.metric(metric, { statistic, period: FIVE_MINUTES, label })

  const dashboard = new cloudwatch.Dashboard(scope, 'Dashboard', { defaultInterval: Duration.hours(3) })
  dashboard.addWidgets(
    graph('HTTP API requests', [
      p.api.metricCount({ statistic: 'Sum', period: FIVE_MINUTES, label: 'requests' }),
      p.api.metricClientError({ statistic: 'Sum', period: FIVE_MINUTES, label: '4xx' }),
      p.api.metricServerError({ statistic: 'Sum', period: FIVE_MINUTES, label: '5xx' })
    ]),
    graph('Refusals and upstream failures (from the logs)', [
      fromLogs('ChatQuotaReached', 'CHAT_QUOTA_REACHED'),
      fromLogs('ChatCapacityReserved', 'CHAT_CAPACITY_RESERVED'),
      fromLogs('UpstreamThrottled', 'UPSTREAM_THROTTLED'),
      fromLogs('UpstreamErrors', 'UPSTREAM_FAILED / MISCONFIGURED')
    ]),
    graph('Latency (ms)', [
      p.api.metricLatency({ statistic: 'p99', period: FIVE_MINUTES, label: 'HTTP API p99' }),
      fn('Duration', 'p99', 'function p99'),
      fn('Duration', 'p50', 'function p50')
    ])
  )
  dashboard.addWidgets(
    graph('Function invocations, errors, throttles', [
      fn('Invocations', 'Sum', 'invocations'), fn('Errors', 'Sum', 'errors'), fn('Throttles', 'Sum', 'throttles')
    ]),
    graph(`Concurrent executions${p.reservedConcurrency === undefined ? '' : ` (reserved ${p.reservedConcurrency})`}`, [fn('ConcurrentExecutions', 'Maximum', 'concurrent')]),
    graph('State table (DynamoDB)', [
      p.table.metricConsumedReadCapacityUnits({ statistic: 'Sum', period: FIVE_MINUTES, label: 'read units' }),
      p.table.metricConsumedWriteCapacityUnits({ statistic: 'Sum', period: FIVE_MINUTES, label: 'write units' })
    ], [
      p.table.metric('ReadThrottleEvents', { statistic: 'Sum', period: FIVE_MINUTES, label: 'read throttles' }),
      p.table.metric('WriteThrottleEvents', { statistic: 'Sum', period: FIVE_MINUTES, label: 'write throttles' })
    ])
  )
  dashboard.addWidgets(new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: p.alarms, width: 24, height: 6 }))
  return dashboard
}
