import type { Test } from 'tap'
import { randomUUID } from 'node:crypto'
import type { AvailabilityShare } from '../../src/connect/availability.js'
import type { StateStore, StateStoreKind } from '../../src/state/store.js'
import { until } from '../helper.js'

/**
 * What every shared-state store promises, whatever keeps it. A backend hands out replicas: stores
 * over the same keys, as two processes of one deployment would open them (for memory, the one
 * process's store itself).
 */
export interface Backend {
  kind: StateStoreKind
  /** A fresh key space for one test; each call of the result is one more replica over it. */
  open (t: Test): Promise<Replicas>
}

export interface Replicas {
  /** One more replica, ready to answer. */
  replica (): Promise<StateStore>
  /**
   * Lets `ms` pass for the store's expiries, then checks: the injected clock moves where the store
   * takes it; Redis expires on its own clock, so there the check is retried until it holds (bounded).
   */
  after (ms: number, check: () => Promise<boolean>): Promise<boolean>
}

const RACERS = 20

export function stateContract (t: Test, backend: Backend) {
  t.test('rate windows: each hit counts in its key\'s window; a new window starts once it ends', async (t) => {
    const { replica, after } = await backend.open(t)
    const windows = (await replica()).rateWindows
    const counts = []
    for (let i = 0; i < 3; i++) counts.push(await windows.incr('203.0.113.1', 1_000))
    t.same(counts.map((c) => c.current), [1, 2, 3])
    t.ok(counts.every((c) => c.ttl > 0 && c.ttl <= 1_000), 'what is left of the window, never more than the window')
    t.equal((await windows.incr('203.0.113.2', 1_000)).current, 1, 'another key has its own window')
    t.ok(await after(1_001, async () => (await windows.incr('203.0.113.1', 1_000)).current === 1), 'counted from one again after the window')
  })

  t.test('rate windows: two replicas count in one window', async (t) => {
    const { replica } = await backend.open(t)
    const [a, b] = await Promise.all([replica(), replica()])
    await a.rateWindows.incr('k', 60_000)
    await b.rateWindows.incr('k', 60_000)
    const hits = await Promise.all(Array.from({ length: RACERS }, (_, i) => (i % 2 ? a : b).rateWindows.incr('k', 60_000)))
    t.same(hits.map((h) => h.current).sort((x, y) => x - y), Array.from({ length: RACERS }, (_, i) => i + 3), 'every concurrent hit counted once')
  })

  t.test('spent proofs: of many concurrent claims on two replicas exactly one wins; claimable again once expired', async (t) => {
    const { replica, after } = await backend.open(t)
    const [a, b] = await Promise.all([replica(), replica()])
    const id = randomUUID()
    const wins = await Promise.all(Array.from({ length: RACERS }, (_, i) => (i % 2 ? a : b).spentProofs.claim(id, 1_000)))
    t.equal(wins.filter(Boolean).length, 1)
    t.equal(await a.spentProofs.claim(randomUUID(), 1_000), true, 'another proof is its own')
    t.ok(await after(1_001, () => b.spentProofs.claim(id, 1_000)), 'a claim lasts its TTL only')
  })

  t.test('spent resumes: of many concurrent holds on two replicas exactly one wins', async (t) => {
    const { replica } = await backend.open(t)
    const [a, b] = await Promise.all([replica(), replica()])
    const holds = await Promise.all(Array.from({ length: RACERS }, (_, i) => (i % 2 ? a : b).spentResumes.hold('contact-1', 60_000)))
    t.equal(holds.filter(Boolean).length, 1)
  })

  t.test('spent resumes: a released hold may be taken again; a spent one stays taken (a late release included) until it expires', async (t) => {
    const { replica, after } = await backend.open(t)
    const [a, b] = await Promise.all([replica(), replica()])
    const first = await a.spentResumes.hold('c', 1_000)
    t.ok(first)
    t.equal(await a.spentResumes.hold('c', 1_000), undefined, 'held: refused on the same replica')
    t.equal(await b.spentResumes.hold('c', 1_000), undefined, 'held: refused on another')
    await first!.release()
    const second = await b.spentResumes.hold('c', 1_000)
    t.ok(second, 'released: usable again')
    await second!.spend()
    await second!.release()
    t.equal(await a.spentResumes.hold('c', 1_000), undefined, 'spent: a release after the spend frees nothing')
    t.equal(await b.spentResumes.hold('c', 1_000), undefined)
    await first!.release()
    t.equal(await a.spentResumes.hold('c', 1_000), undefined, 'an old holder\'s release frees nothing either')
    t.ok(await after(1_001, async () => (await a.spentResumes.hold('c', 1_000)) !== undefined), 'spent for its TTL only')
  })

  t.test('availability: one lock holder at a time; renewed by it, handed back by it alone, free once expired; the state it writes is read by all', async (t) => {
    const { replica, after } = await backend.open(t)
    const [a, b] = (await Promise.all([replica(), replica()])).map((store) => store.availability) as [AvailabilityShare, AvailabilityShare]
    t.equal(await a.lock('token-a', 1_000), true)
    t.equal(await b.lock('token-b', 1_000), false, 'held by a')
    t.equal(await a.lock('token-a', 1_000), true, 'renewed by its holder')
    await b.unlock('token-b')
    t.equal(await b.lock('token-b', 1_000), false, 'only its holder hands it back')
    await a.unlock('token-a')
    t.equal(await b.lock('token-b', 1_000), true, 'handed back: taken by another')
    t.ok(await after(1_001, () => a.lock('token-a', 1_000)), 'free once expired')

    t.equal(await b.read(), undefined, 'nothing written yet')
    await a.write('{"q":{"failedAt":1}}', 1_000)
    t.equal(await b.read(), '{"q":{"failedAt":1}}')
    t.ok(await after(1_001, async () => await b.read() === undefined), 'the state expires')
  })
}

/** For stores that take the clock: moves it, then checks once. */
export function movedTime (move: (ms: number) => void | Promise<void>) {
  return async (ms: number, check: () => Promise<boolean>) => {
    await move(ms)
    return await check()
  }
}

/** For Redis, whose expiries run on its own clock: retries the check until it holds, within a bound. */
export async function eventually (ms: number, check: () => Promise<boolean>): Promise<boolean> {
  let held = false
  await until(`the check to hold after ${ms} ms`, async () => (held = await check()), ms + 5_000).catch(() => {})
  return held
}
