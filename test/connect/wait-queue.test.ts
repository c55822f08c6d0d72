import t from 'tap'
import { Overloaded } from '../../src/errors.js'
import type { Slot } from '../../src/connect/pacing-schedule.js'
import { WaitQueue, type Placed } from '../../src/connect/wait-queue.js'
import { fakeClock } from '../fake-clock.js'

function setup () {
  const time = fakeClock()
  const abandoned: Placed[] = []
  const queue = new WaitQueue(time.clock, (left) => abandoned.push(...left))
  /** A slot `waitMs` ahead, its mark on the schedule at that time plus one interval. */
  const slot = (waitMs: number, intervalMs = 100): Slot => ({ granted: true, waitMs, mark: time.clock.now() + waitMs + intervalMs, intervalMs })
  const refuse = (waitMs: number) => new Overloaded('refused', { retryAfterSeconds: Math.ceil(waitMs / 1000) })
  return { time, queue, abandoned, slot, refuse }
}

t.test('a start waits exactly until its slot, and one already due goes at once', async (t) => {
  const { time, queue, slot } = setup()
  let done = false
  const waiting = queue.wait(slot(300), false, Infinity, new AbortController().signal).then(() => { done = true })
  await time.tick(299)
  t.notOk(done, 'not a millisecond early')
  await time.tick(1)
  await waiting
  t.ok(done, 'on time')
  await queue.wait(slot(0), false, Infinity, new AbortController().signal)
  t.pass('a free token does not wait')
})

t.test('a start that leaves rejects with AbortError and hands its slot back, waiting or not yet', async (t) => {
  const { time, queue, abandoned, slot } = setup()
  const leaves = new AbortController()
  const waiting = queue.wait(slot(500), true, Infinity, leaves.signal).catch((e: unknown) => e)
  await time.tick(100)
  leaves.abort()
  t.equal((await waiting as Error).name, 'AbortError')
  t.equal(abandoned.length, 1)
  t.equal(abandoned[0]!.shared, true)
  const gone = AbortSignal.abort()
  t.equal((await queue.wait(slot(500), false, Infinity, gone).catch((e: unknown) => e) as Error).name, 'AbortError', 'already gone')
  t.equal(abandoned.length, 2)
  await time.runAll()
  t.equal(abandoned.length, 2, 'nothing else left')
})

t.test('re-planned at half the rate: every wait doubles from now, those past their limit are refused at once', async (t) => {
  const { time, queue, slot, refuse } = setup()
  const sentAt: number[] = []
  const refused: Overloaded[] = []
  const start = time.clock.now()
  const marks = [100, 200, 300].map((w) => slot(w).mark)
  const all = Promise.all([100, 200, 300].map((w) => queue.wait(slot(w), false, start + 500, new AbortController().signal)
    .then(() => { sentAt.push(time.clock.now() - start) }, (e: Overloaded) => { refused.push(e) })))
  const { replanned, dropped } = queue.replan(2, start, false, refuse)
  t.equal(replanned, 2)
  t.equal(dropped.length, 1)
  t.same(dropped[0]!.slot, { granted: true, waitMs: 300, mark: start + (marks[2]! - start) * 2, intervalMs: 200 }, 'its mark moved like the schedule did')
  await time.settle()
  t.equal(refused.length, 1, 'refused before any time passed')
  t.equal(refused[0]!.retryAfterSeconds, 1)
  await time.runAll()
  await all
  t.same(sentAt, [200, 400], 'the others go at their new times')
})

t.test('a start from the other schedule keeps its time but loses its mark there', async (t) => {
  const { time, queue, slot, refuse } = setup()
  const leaves = new AbortController()
  const abandonedSlots: Placed[] = []
  const q = new WaitQueue(time.clock, (left) => abandonedSlots.push(...left))
  const waiting = q.wait(slot(100), false, Infinity, leaves.signal).catch(() => {})
  t.same(q.replan(2, time.clock.now(), true, refuse), { replanned: 1, dropped: [] })
  leaves.abort()
  await waiting
  t.ok(Number.isNaN(abandonedSlots[0]!.slot.mark), 'nothing to give back on the local schedule')
  t.same(queue.replan(2, time.clock.now(), true, refuse), { replanned: 0, dropped: [] }, 'an empty queue')
})
