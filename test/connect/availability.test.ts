/**
 * Opening hours to absolute times (time zones, midnight, daylight saving) and the answer worked out
 * from what the poller knows at a given moment: pure functions, no Connect.
 */
import t from 'tap'
import { availabilityAt, type QueueState } from '../../src/connect/availability.js'
import { isoInZone, openIntervals, zonedEpoch, zoneOffsetMs } from '../../src/connect/hours.js'
import { widgetsSettings } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { parseWidgetFile } from '../../src/widgets/file.js'
import { createWidgets } from '../../src/widgets/index.js'

const slice = (from: string, to: string) => {
  const [fh, fm] = from.split(':').map(Number) as [number, number]
  const [th, tm] = to.split(':').map(Number) as [number, number]
  return { start: { hours: fh, minutes: fm }, end: { hours: th, minutes: tm } }
}

t.test('local times to instants, across daylight saving changes', async (t) => {
  t.equal(new Date(zonedEpoch('2026-12-07', 9 * 60, 'Europe/Berlin')).toISOString(), '2026-12-07T08:00:00.000Z')
  t.equal(new Date(zonedEpoch('2026-07-07', 9 * 60, 'Europe/Berlin')).toISOString(), '2026-07-07T07:00:00.000Z')
  t.equal(new Date(zonedEpoch('2026-12-07', 9 * 60, 'America/New_York')).toISOString(), '2026-12-07T14:00:00.000Z')
  t.equal(new Date(zonedEpoch('2026-12-07', 9 * 60, 'Asia/Kolkata')).toISOString(), '2026-12-07T03:30:00.000Z')
  // Berlin springs forward at 02:00 on 29 March 2026: 02:30 does not exist and counts as 03:30.
  t.equal(new Date(zonedEpoch('2026-03-29', 150, 'Europe/Berlin')).toISOString(), '2026-03-29T01:30:00.000Z')
  t.equal(new Date(zonedEpoch('2026-03-29', 180, 'Europe/Berlin')).toISOString(), '2026-03-29T01:00:00.000Z')
  // It falls back on 25 October: 02:30 happens twice; the first is taken.
  t.equal(new Date(zonedEpoch('2026-10-25', 150, 'Europe/Berlin')).toISOString(), '2026-10-25T00:30:00.000Z')
  t.equal(zoneOffsetMs(Date.parse('2026-12-07T12:00:00Z'), 'UTC'), 0)
  t.throws(() => zoneOffsetMs(0, 'Mars/Olympus'), RangeError)
})

t.test('ISO 8601 in the hours\' own offset', async (t) => {
  t.equal(isoInZone(Date.parse('2026-12-07T08:00:00Z'), 'Europe/Berlin'), '2026-12-07T09:00:00+01:00')
  t.equal(isoInZone(Date.parse('2026-12-07T14:00:00Z'), 'America/New_York'), '2026-12-07T09:00:00-05:00')
  t.equal(isoInZone(Date.parse('2026-12-07T03:30:00Z'), 'Asia/Kolkata'), '2026-12-07T09:00:00+05:30')
  t.equal(isoInZone(Date.parse('2026-12-07T09:00:00Z'), 'UTC'), '2026-12-07T09:00:00Z')
})

t.test('slices become merged intervals: past midnight, a whole day, adjoining days', async (t) => {
  const iso = (intervals: Array<[number, number]>) => intervals.map(([a, b]) => [new Date(a).toISOString(), new Date(b).toISOString()])
  t.same(iso(openIntervals([
    { date: '2026-12-07', slices: [slice('22:00', '02:00')] },
    { date: '2026-12-08', slices: [slice('02:00', '06:00'), slice('09:00', '12:00'), slice('11:00', '13:00')] }
  ], 'UTC')), [
    ['2026-12-07T22:00:00.000Z', '2026-12-08T06:00:00.000Z'],
    ['2026-12-08T09:00:00.000Z', '2026-12-08T13:00:00.000Z']
  ])
  t.same(iso(openIntervals([
    { date: '2026-12-07', slices: [slice('00:00', '00:00')] },
    { date: '2026-12-08', slices: [slice('00:00', '00:00')] }
  ], 'Europe/Berlin')), [['2026-12-06T23:00:00.000Z', '2026-12-08T23:00:00.000Z']], 'two whole days in a row are one interval')
  t.same(openIntervals([{ date: '2026-12-07', slices: [] }], 'UTC'), [])
})

t.test('the answer at a moment, from what is known', async (t) => {
  const at = Date.parse('2026-12-07T12:00:00Z')
  const agents = { at, agentsAvailable: 2, agentsStaffed: 3, contactsInQueue: 1 }
  const schedule = { at, enabled: true, timeZone: 'UTC', intervals: [[at - 3_600_000, at + 3_600_000], [at + 86_400_000, at + 90_000_000]] as Array<[number, number]>, until: at + 7 * 86_400_000 }
  const state: QueueState = { agents, schedule }
  const stale = 60_000

  t.same(availabilityAt(state, at, stale), { open: true, reason: 'open', agentsAvailable: 2, contactsInQueue: 1 })
  t.same(availabilityAt(state, at + 1_800_000, stale), { open: true, reason: 'unknown', agentsAvailable: 2, contactsInQueue: 1, ageSeconds: 1800 },
    'values older than the limit: unknown')
  t.same(availabilityAt({ ...state, agents: { ...agents, at: at + 3_600_000 } }, at + 3_600_000, stale),
    { open: false, reason: 'closed', agentsAvailable: 2, contactsInQueue: 1, nextOpen: '2026-12-08T12:00:00Z' }, 'the end of an interval is closed')
  t.same(availabilityAt({ ...state, failedAt: at }, at, stale), { open: true, reason: 'unknown', agentsAvailable: 2, contactsInQueue: 1, ageSeconds: 0 },
    'the last poll failed: unknown')
  t.same(availabilityAt({ ...state, agents: { ...agents, at: at + 10 * 86_400_000 } }, at + 10 * 86_400_000, stale),
    { open: true, reason: 'unknown', agentsAvailable: 2, contactsInQueue: 1, ageSeconds: 0 }, 'past the hours read: unknown')
  t.same(availabilityAt({ agents }, at, stale), { open: true, reason: 'unknown', agentsAvailable: 2, contactsInQueue: 1, ageSeconds: 0 }, 'no hours yet')
  t.same(availabilityAt(undefined, at, stale), { open: true, reason: 'unknown' }, 'nothing known: open, unknown, nothing more')
  t.same(availabilityAt({ agents: { ...agents, agentsStaffed: 0 }, schedule }, at, stale), { open: false, reason: 'no_agents', agentsAvailable: 2, contactsInQueue: 1 })
  t.same(availabilityAt({ agents, schedule: { ...schedule, enabled: false } }, at, stale), { open: false, reason: 'closed', agentsAvailable: 2, contactsInQueue: 1 })
  t.same(availabilityAt({ agents, schedule, failedAt: at }, at + 3_600_000, stale),
    { open: false, reason: 'unknown', agentsAvailable: 2, contactsInQueue: 1, nextOpen: '2026-12-08T12:00:00Z', ageSeconds: 3600 },
    'unknown keeps what the last values say now, closed by the hours included')
})

t.test('settings: CONNECT_QUEUE_ID, AVAILABILITY_REFRESH, REFUSE_WHEN_CLOSED, and a widget\'s queueId', async (t) => {
  const base = { NODE_ENV: 'development', CONNECT_SIMULATOR: 'true' }
  t.equal(loadConfig(base).availabilityRefreshMs, 15_000)
  t.equal(loadConfig({ ...base, AVAILABILITY_REFRESH: '1 minute' }).availabilityRefreshMs, 60_000)
  t.equal(loadConfig({ ...base, AVAILABILITY_REFRESH: '30' }).availabilityRefreshMs, 30_000, 'seconds without a unit')
  t.throws(() => loadConfig({ ...base, AVAILABILITY_REFRESH: '2 seconds' }), /AVAILABILITY_REFRESH: at least 5 seconds/)
  t.throws(() => loadConfig({ ...base, AVAILABILITY_REFRESH: 'often' }), /AVAILABILITY_REFRESH/)
  t.throws(() => loadConfig({ ...base, REFUSE_WHEN_CLOSED: 'true' }), /REFUSE_WHEN_CLOSED: needs CONNECT_QUEUE_ID/)

  const config = loadConfig({ ...base, CONNECT_QUEUE_ID: 'q-default', REFUSE_WHEN_CLOSED: 'true' })
  const widgets = createWidgets(widgetsSettings(config))
  t.teardown(() => widgets.close())
  t.same(widgets.default.availability, { queue: { instanceId: 'simulated-instance', queueId: 'q-default' }, refuseWhenClosed: true })

  const specs = parseWidgetFile(JSON.stringify({ widgets: [{ id: 'a', contactFlowId: 'f', allowedOrigins: ['none'], queueId: 'q-a', refuseWhenClosed: false }] }), {})
  t.same([specs[0]?.queueId, specs[0]?.refuseWhenClosed], ['q-a', false])
  t.throws(() => parseWidgetFile(JSON.stringify({ widgets: [{ id: 'a', contactFlowId: 'f', allowedOrigins: ['none'], refuseWhenClosed: 'yes' }] }), {}), /refuseWhenClosed/)
})
