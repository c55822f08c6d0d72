import t from 'tap'
import { TableSchedule } from '../../src/connect/table-schedule.js'
import { startDynalite } from '../dynalite.js'
import { fakeClock } from '../fake-clock.js'

// The schedule in DynamoDB keeps the replicas' own time (the Clock it is given), so on a fake clock
// every wait is exact.
const dynalite = await startDynalite(t)

t.test('one slot per interval after the burst; a slot past the longest wait is refused and takes nothing', async (t) => {
  const { clock, tickSync } = fakeClock()
  const shared = new TableSchedule(dynalite.table(t), clock)
  t.match(await shared.reserve(1_000, 2, 5_000), { slot: { granted: true, waitMs: 0, intervalMs: 1_000 }, horizonMs: 1_000, replicas: 0, record: null })
  t.equal((await shared.reserve(1_000, 2, 5_000)).slot.waitMs, 0, 'the burst of 2')
  t.equal((await shared.reserve(1_000, 2, 5_000)).slot.waitMs, 1_000, 'then one per interval')
  const refused = await shared.reserve(1_000, 2, 1_500)
  t.match(refused.slot, { granted: false, waitMs: 2_000 }, 'refused, and told when its slot would have come')
  t.equal((await shared.reserve(1_000, 2, 5_000)).slot.waitMs, 2_000, 'the refused one took no slot')
  tickSync(10_000)
  t.match((await shared.reserve(1_000, 2, 0)).slot, { granted: true, waitMs: 0 }, 'idle again: the schedule starts from now')
})

t.test('two replicas reserving at once each get a slot of their own', async (t) => {
  const { clock } = fakeClock()
  const table = dynalite.table(t)
  const replicas = [new TableSchedule(table, clock), new TableSchedule(table, clock)]
  const slots = await Promise.all(Array.from({ length: 12 }, (_, i) => replicas[i % 2]!.reserve(100, 1, 5_000)))
  t.same(slots.map((r) => r.slot.waitMs).sort((a, b) => a - b), Array.from({ length: 12 }, (_, i) => i * 100), 'one every 100 ms, none twice')
})

t.test('a slot given back at the end of the schedule comes free; one in the middle does not', async (t) => {
  const { clock } = fakeClock()
  const shared = new TableSchedule(dynalite.table(t), clock)
  await shared.reserve(1_000, 1, 5_000)
  const second = (await shared.reserve(1_000, 1, 5_000)).slot
  const third = (await shared.reserve(1_000, 1, 5_000)).slot
  t.equal(await shared.release([second]), 0, 'a slot in the middle')
  t.equal(await shared.release([third]), 1, 'the last one')
  t.equal((await shared.reserve(1_000, 1, 5_000)).slot.waitMs, 2_000, 'the third slot is free again')
})
