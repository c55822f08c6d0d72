import t from 'tap'
import { OTHER_CLIENTS, RefusalLog, type RefusalSummary } from '../src/refusal-log.js'
import { fakeClock } from './fake-clock.js'

function setup (overrides: Partial<{ perClient: number; total: number; maxTracked: number }> = {}) {
  const { clock: time, tickSync, timers } = fakeClock(0)
  const clock = { tickSync, countTimers: timers }
  const summaries: RefusalSummary[] = []
  const log = new RefusalLog({ perClient: 5, total: 100, windowMs: 60_000, maxTracked: 1_000, ...overrides, clock: time, summarize: (s) => summaries.push(s) })
  const admitted = (client: string, code: string, n: number, status = 400) =>
    Array.from({ length: n }, () => log.admit(client, code, status)).filter(Boolean).length
  return { clock, summaries, log, admitted }
}

t.test('the first 5 of a kind from a client get lines; the rest are counted in one summary when the window ends', async (t) => {
  const { clock, summaries, admitted } = setup()
  t.equal(admitted('10.0.0.1', 'VALIDATION_FAILED', 1_000), 5)
  t.same(summaries, [], 'nothing is summarised before the window ends')
  clock.tickSync(60_000)
  t.same(summaries, [{ client: '10.0.0.1', code: 'VALIDATION_FAILED', statusCode: 400, count: 1_000, logged: 5, windowSeconds: 60 }])
})

t.test('each client and each kind has its own budget', async (t) => {
  const { admitted } = setup()
  t.equal(admitted('10.0.0.1', 'VALIDATION_FAILED', 10), 5)
  t.equal(admitted('10.0.0.1', 'ORIGIN_NOT_ALLOWED', 10, 403), 5, 'another kind from the same client')
  t.equal(admitted('10.0.0.2', 'VALIDATION_FAILED', 10), 5, 'the same kind from another client')
})

t.test('a new window starts with a fresh budget; a window without refusals past the budget summarises nothing', async (t) => {
  const { clock, summaries, admitted } = setup()
  t.equal(admitted('10.0.0.1', 'RATE_LIMITED', 7, 429), 5)
  clock.tickSync(60_000)
  t.equal(admitted('10.0.0.1', 'RATE_LIMITED', 3, 429), 3, 'the budget is back')
  clock.tickSync(60_000)
  t.equal(summaries.length, 1, 'the second window stayed within its budget: no summary')
  t.match(summaries[0], { count: 7, logged: 5 })
})

t.test('at most `total` lines of their own per window, whatever the number of clients', async (t) => {
  const { clock, summaries, admitted } = setup({ total: 20 })
  let lines = 0
  for (let i = 0; i < 100; i++) lines += admitted(`10.0.1.${i}`, 'VALIDATION_FAILED', 3)
  t.equal(lines, 20)
  clock.tickSync(60_000)
  // Clients 0-5 had all 3 logged, client 6 two of 3, clients 7-99 none.
  t.equal(summaries.length, 94, 'every client with a refusal that had no line is summarised')
  t.equal(summaries.reduce((n, s) => n + s.count, 0), 300 - 6 * 3, 'and every refusal is in a line or a summary')
})

t.test('memory is bounded: clients past maxTracked are summed in one tally per kind', async (t) => {
  const { clock, summaries, log } = setup({ maxTracked: 50, perClient: 1, total: 1_000 })
  for (let i = 0; i < 5_000; i++) log.admit(`10.${i >> 8}.${i & 255}.1`, 'NOT_FOUND', 404)
  clock.tickSync(60_000)
  const others = summaries.filter((s) => s.client === OTHER_CLIENTS)
  t.equal(summaries.length - others.length, 0, 'the tracked clients each had one refusal, logged: no summary of their own')
  t.same(others, [{ client: OTHER_CLIENTS, code: 'NOT_FOUND', statusCode: 404, count: 4_950, logged: 1, windowSeconds: 60 }])
})

t.test('close() stops the timer and summarises the window so far', async (t) => {
  const { clock, summaries, log, admitted } = setup()
  admitted('10.0.0.1', 'VALIDATION_FAILED', 8)
  clock.tickSync(12_300)
  log.close()
  t.same(summaries, [{ client: '10.0.0.1', code: 'VALIDATION_FAILED', statusCode: 400, count: 8, logged: 5, windowSeconds: 12.3 }])
  t.equal(clock.countTimers(), 0, 'no timer left')
})
