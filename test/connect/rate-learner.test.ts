import t from 'tap'
import { RateLearner, type LearningOptions } from '../../src/connect/rate-learner.js'
import { fakeClock } from '../fake-clock.js'

function learner (learning: LearningOptions = {}, configured = 10) {
  const time = fakeClock()
  const steps: number[] = []
  // As the pacer does: each step up is reported, and reporting plans the next one.
  const l: RateLearner = new RateLearner(configured, learning, time.clock, () => { steps.push(l.changed()) })
  t.teardown(() => l.close())
  return { time, l, steps }
}

t.test('the configured rate until a throttle; then what Connect accepted over the window, a cut of 10% to 50%', async (t) => {
  const { time, l } = learner()
  const now = time.clock.now()
  t.equal(l.rateAt(now), 10)
  for (let i = 0; i < 7; i++) l.accepted(now)
  t.same(l.lowerLocally(now, 1), { measured: 7, k: 10 / 7 })
  t.equal(l.rateAt(now), 7)
  t.same(l.record, { base: 7, since: now, at: now, k: 10 / 7 })

  const busy = learner().l
  for (let i = 0; i < 30; i++) busy.accepted(now)
  t.equal(busy.lowerLocally(now, 1)?.measured, 30)
  t.equal(busy.rateAt(now), 9, 'more accepted than paced: still a 10% cut')
})

t.test('accepted calls older than the window do not count; the floor holds; a share lowers its own part', async (t) => {
  const { time, l } = learner({ floor: 0.25 })
  for (let i = 0; i < 7; i++) l.accepted(time.clock.now())
  await time.tick(1_001)
  t.equal(l.lowerLocally(time.clock.now(), 1)?.measured, 0, 'the window moved past them')
  t.equal(l.rateAt(time.clock.now()), 5, 'halved, the most one throttle cuts')
  l.lowerLocally(time.clock.now(), 1)
  t.equal(l.rateAt(time.clock.now()), 2.5, 'the floor')
  t.equal(l.lowerLocally(time.clock.now(), 1), undefined, 'nothing lower than the floor')

  const half = learner().l
  half.lowerLocally(time.clock.now(), 0.5)
  t.equal(half.rateAt(time.clock.now()), 5, 'half the replicas\' rate halved is the deployment\'s rate halved')
})

t.test('throttles inside the debounce are one', async (t) => {
  const { time, l } = learner({ debounceMs: 1_000 })
  t.ok(l.takeThrottle(time.clock.now()))
  await time.tick(999)
  t.notOk(l.takeThrottle(time.clock.now()))
  await time.tick(1)
  t.ok(l.takeThrottle(time.clock.now()))
})

t.test('after the hold the rate climbs one step per interval, one report per step, until the configured rate', async (t) => {
  const { time, l, steps } = learner({ holdMs: 1_000, stepMs: 500, step: 0.1 })
  l.lowerLocally(time.clock.now(), 1)
  t.equal(l.changed(), 5)
  await time.tick(1_000)
  t.same(steps, [], 'held')
  await time.tick(1)
  t.same(steps, [6])
  await time.tick(500)
  t.same(steps, [6, 7])
  await time.runAll()
  t.same(steps, [6, 7, 8, 9, 10], 'and no timer after the configured rate')
})

t.test('a record from Redis: adopted when newer, ignored when older or malformed', async (t) => {
  const { time, l } = learner()
  const now = time.clock.now()
  t.same(l.adopt(`6.000000:${now}:${now}.000:1.6666666666666667`), { base: 6, since: now, at: now, k: 10 / 6 })
  t.equal(l.rateAt(now), 6)
  t.equal(l.adopt(`5:${now}:${now - 1}:2`), undefined, 'older')
  for (const bad of [null, '', 'soon', '0:1:2:2', `5:${now}:${now + 1}:0.5`, '5:x:1:2']) t.equal(l.adopt(bad), undefined, String(bad))
  t.equal(l.rateAt(now), 6)
  const args = l.sharedArgs(now)
  // From the floor back to the configured rate: the hold, then 18 steps of 5%; the record lives one step longer.
  t.same(args, { current: 6, floor: 1.25, windowMs: 1_000, debounceMs: 1_000, since: now, ttlMs: 10_000 + 18 * 1_500 + 1_500 })
})
