import t from 'tap'
import { delay, systemClock } from '../src/clock.js'
import { fakeClock } from './fake-clock.js'
import { build, ORIGIN, startChat, validBody } from './helper.js'

t.test('delay: resolves once the clock has moved its time, not before', async (t) => {
  const time = fakeClock()
  let done = false
  const waiting = delay(time.clock, 100).then(() => { done = true })
  await time.tick(99)
  t.notOk(done)
  await time.tick(1)
  await waiting
  t.ok(done)
})

t.test('delay: an abort rejects at once with an AbortError and stops the timer', async (t) => {
  const time = fakeClock()
  const leaves = new AbortController()
  const waiting = delay(time.clock, 100, leaves.signal).catch((e: unknown) => e)
  leaves.abort('gone')
  const err = await waiting as Error & { code?: string }
  t.match(err, { name: 'AbortError', code: 'ABORT_ERR', cause: 'gone' })
  t.equal(await time.runAll(), time.clock.now(), 'no timer left behind')
  t.match(await delay(time.clock, 100, AbortSignal.abort()).catch((e: unknown) => e), { name: 'AbortError' }, 'already aborted')
})

t.test('the system clock: Date.now() and real timers, unref on request', async (t) => {
  const before = Date.now()
  t.ok(systemClock.now() >= before)
  const timer = systemClock.setTimeout(() => t.fail('cleared'), 10, { unref: true }) as NodeJS.Timeout
  t.equal(timer.hasRef(), false)
  systemClock.clearTimeout(timer)
  await delay(systemClock, 1)
  t.pass('a real delay ends')
})

t.test('one fake clock drives the gateway and the simulator: a 60-minute chat started through the app ends when it passes the hour', async (t) => {
  const time = fakeClock()
  const { app, sim } = await build(t, {}, { sim: { clock: time.clock, participant: false }, deps: { clock: time.clock } })
  const res = await startChat(app, validBody({ ChatDurationInMinutes: 60 }), { origin: ORIGIN })
  t.equal(res.statusCode, 200)
  const contact = sim.contacts.get((res.json() as { data: { startChatResult: { ContactId: string } } }).data.startChatResult.ContactId)
  t.equal(contact?.createdAt, time.clock.now(), 'started at the shared clock\'s now')
  await time.tick(60 * 60_000 - 1)
  t.equal(sim.stats().active, 1)
  await time.tick(1)
  t.equal(sim.stats().active, 0, 'ended by the same clock, without waiting')
})
