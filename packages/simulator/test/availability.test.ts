/**
 * The simulator's availability APIs through the real ConnectClient (DescribeQueue,
 * GetEffectiveHoursOfOperations, GetCurrentMetricData) and its control API over HTTP.
 */
import t from 'tap'
import {
  ConnectClient, DescribeQueueCommand, GetCurrentMetricDataCommand, GetEffectiveHoursOfOperationsCommand,
  InternalServiceException, ResourceNotFoundException
} from '@aws-sdk/client-connect'
import { parseHours, queueSettingsFromEnv } from '../src/availability.js'
import { startSimulator, type ConnectSimulator } from '../src/connect.js'

function client (sim: ConnectSimulator) {
  return new ConnectClient({ endpoint: sim.url, region: 'us-east-1', maxAttempts: 1, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' } })
}

const metricsInput = (queues: string[]) => ({
  InstanceId: 'i-1',
  Filters: { Queues: queues, Channels: ['CHAT' as const] },
  Groupings: ['QUEUE' as const],
  CurrentMetrics: (['AGENTS_AVAILABLE', 'AGENTS_STAFFED', 'CONTACTS_IN_QUEUE'] as const).map((Name) => ({ Name, Unit: 'COUNT' as const }))
})

t.test('the default queue: enabled, open all day in UTC, one agent available', async (t) => {
  const sim = await startSimulator({ participant: false })
  t.teardown(() => sim.close())
  const connect = client(sim)
  t.teardown(() => connect.destroy())

  const { Queue } = await connect.send(new DescribeQueueCommand({ InstanceId: 'i-1', QueueId: 'simulated-queue' }))
  t.equal(Queue?.Status, 'ENABLED')
  t.equal(Queue?.HoursOfOperationId, 'hours-simulated-queue')

  const hours = await connect.send(new GetEffectiveHoursOfOperationsCommand({ InstanceId: 'i-1', HoursOfOperationId: 'hours-simulated-queue', FromDate: '2026-12-06', ToDate: '2026-12-07' }))
  t.equal(hours.TimeZone, 'UTC')
  t.same(hours.EffectiveHoursOfOperationList, [
    { Date: '2026-12-06', OperationalHours: [{ Start: { Hours: 0, Minutes: 0 }, End: { Hours: 0, Minutes: 0 } }] },
    { Date: '2026-12-07', OperationalHours: [{ Start: { Hours: 0, Minutes: 0 }, End: { Hours: 0, Minutes: 0 } }] }
  ])

  const metrics = await connect.send(new GetCurrentMetricDataCommand(metricsInput(['simulated-queue'])))
  t.same(metrics.MetricResults?.[0]?.Collections?.map((c) => [c.Metric?.Name, c.Value]), [['AGENTS_AVAILABLE', 1], ['AGENTS_STAFFED', 1], ['CONTACTS_IN_QUEUE', 0]])
  t.same(sim.availability.calls(), { describeQueue: 1, effectiveHours: 1, currentMetrics: 1 })
})

t.test('weekday hours in a time zone, with a closing and an opening override', async (t) => {
  const sim = await startSimulator({ participant: false })
  t.teardown(() => sim.close())
  const connect = client(sim)
  t.teardown(() => connect.destroy())
  sim.availability.setQueue('support', {
    timeZone: 'Europe/Berlin',
    hours: '09:00-17:00 weekdays',
    overrides: [
      { date: '2026-12-24', status: 'CLOSED', start: '12:00', end: '17:00', name: 'Christmas Eve' },
      { date: '2026-12-26', status: 'OPEN', start: '10:00', end: '14:00' }
    ]
  })
  // 2026-12-24 is a Thursday, 12-25 a Friday, 12-26 a Saturday, 12-27 a Sunday.
  const hours = await connect.send(new GetEffectiveHoursOfOperationsCommand({ InstanceId: 'i-1', HoursOfOperationId: 'hours-support', FromDate: '2026-12-24', ToDate: '2026-12-27' }))
  t.equal(hours.TimeZone, 'Europe/Berlin')
  t.same(hours.EffectiveHoursOfOperationList?.map((d) => [d.Date, d.OperationalHours?.map((h) => `${h.Start?.Hours}:${h.Start?.Minutes}-${h.End?.Hours}:${h.End?.Minutes}`)]), [
    ['2026-12-24', ['9:0-12:0']],
    ['2026-12-25', ['9:0-17:0']],
    ['2026-12-26', ['10:0-14:0']],
    ['2026-12-27', []]
  ])
  t.same(hours.EffectiveOverrideHoursList?.map((d) => [d.Date, d.OverrideHours?.[0]?.OperationalStatus]), [['2026-12-24', 'CLOSED'], ['2026-12-26', 'OPEN']])
})

t.test('agents, queued contacts and a queue with nothing to report', async (t) => {
  const sim = await startSimulator({ participant: false })
  t.teardown(() => sim.close())
  const connect = client(sim)
  t.teardown(() => connect.destroy())
  sim.availability.setQueue('sales', { agentsAvailable: 0, agentsStaffed: 3, contactsInQueue: 4 })
  sim.availability.setQueue('empty', { agentsAvailable: 0, agentsStaffed: 0 })
  const metrics = await connect.send(new GetCurrentMetricDataCommand(metricsInput(['sales', 'empty'])))
  t.same(metrics.MetricResults?.map((r) => [r.Dimensions?.Queue?.Id, r.Collections?.map((c) => c.Value)]), [['sales', [0, 3, 4]]])
})

t.test('an unknown queue, a fault for every availability call, and reset', async (t) => {
  const sim = await startSimulator({ participant: false })
  t.teardown(() => sim.close())
  const connect = client(sim)
  t.teardown(() => connect.destroy())
  await t.rejects(connect.send(new DescribeQueueCommand({ InstanceId: 'i-1', QueueId: 'nope' })), ResourceNotFoundException)
  sim.availability.setFault({ type: 'InternalServiceException' })
  await t.rejects(connect.send(new GetCurrentMetricDataCommand(metricsInput(['simulated-queue']))), InternalServiceException)
  sim.reset()
  const { Queue } = await connect.send(new DescribeQueueCommand({ InstanceId: 'i-1', QueueId: 'simulated-queue' }))
  t.equal(Queue?.QueueId, 'simulated-queue')
  t.same(sim.availability.calls(), { describeQueue: 1, effectiveHours: 0, currentMetrics: 0 })
})

t.test('the control API sets a queue and a fault; bad settings are refused by name', async (t) => {
  const sim = await startSimulator({ participant: false, controlApi: true })
  t.teardown(() => sim.close())
  const post = (path: string, body: unknown) => fetch(`${sim.url}${path}`, { method: 'POST', body: JSON.stringify(body) })

  const set = await post('/__sim/availability', { queueId: 'night', timeZone: 'Asia/Tokyo', hours: { MONDAY: ['22:00-06:00'] }, agentsAvailable: 2 })
  t.equal(set.status, 200)
  const state = await (await fetch(`${sim.url}/__sim/availability`)).json() as { queues: Record<string, { timeZone: string; agentsAvailable: number }> }
  t.equal(state.queues.night?.timeZone, 'Asia/Tokyo')
  t.equal(state.queues.night?.agentsAvailable, 2)

  for (const [body, named] of [
    [{ timeZone: 'Mars/Olympus' }, 'timeZone'],
    [{ hours: '9-5' }, 'hours'],
    [{ hours: { FUNDAY: [] } }, 'FUNDAY'],
    [{ overrides: [{ date: '25/12', status: 'CLOSED' }] }, 'overrides[0].date'],
    [{ agentsAvailable: -1 }, 'agentsAvailable'],
    [{ colour: 'red' }, 'colour']
  ] as const) {
    const res = await post('/__sim/availability', body)
    t.equal(res.status, 400, named)
    t.match(((await res.json()) as { Message: string }).Message, named)
  }
  t.equal((await post('/__sim/availability/fault', { type: 'ThrottlingException' })).status, 200)
  const metrics = await fetch(`${sim.url}/metrics/current/i-1`, { method: 'POST', headers: { authorization: 'AWS4-HMAC-SHA256 Credential=AKIDTEST/20250101/us-east-1/connect/aws4_request, SignedHeaders=host, Signature=ab' } })
  t.equal(metrics.headers.get('x-amzn-errortype'), 'ThrottlingException')
  t.equal((await post('/__sim/availability/fault', null)).status, 200)
})

t.test('the short forms of the weekly hours', async (t) => {
  t.same(parseHours('closed').MONDAY, [])
  t.same(parseHours('08:30-18:00').SUNDAY, [{ start: 510, end: 1080 }])
  t.same(parseHours('08:30-18:00 weekdays').SATURDAY, [])
  t.same(parseHours('08:30-18:00 weekdays').FRIDAY, [{ start: 510, end: 1080 }])
  t.throws(() => parseHours('08:30-18:00 weekends'), /weekdays/)
})

t.test('the default queue from SIM_HOURS, SIM_TIME_ZONE and SIM_AGENTS', async (t) => {
  t.same(queueSettingsFromEnv({}), {})
  t.same(queueSettingsFromEnv({ SIM_HOURS: '09:00-17:00 weekdays', SIM_TIME_ZONE: 'Europe/London', SIM_AGENTS: '0' }),
    { timeZone: 'Europe/London', hours: '09:00-17:00 weekdays', agentsAvailable: 0, agentsStaffed: 0 })
  t.throws(() => queueSettingsFromEnv({ SIM_AGENTS: 'two' }), /SIM_AGENTS/)
  await t.rejects(startSimulator({ participant: false, availability: { hours: 'sometimes' } }), /hours/)
})
