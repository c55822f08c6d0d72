// The demo page asks GET /chat/availability before offering a chat, in Debian's Chromium against the
// real gateway and the simulator: open shows the start button, closed says when it opens again,
// and no agents says so; in both of those the start button is gone.
import t, { type Test } from 'tap'
import type { Browser } from 'playwright-core'
import type { QueueSettings } from '@connect-chat-gateway/simulator'
import { demoHarness, launchBrowser, screenshot } from './harness.js'

const browser = await launchBrowser(t)

/** The next 09:00 UTC, always less than a day away: a closed queue whose override opens then. */
function closedUntilNineUtc (): QueueSettings {
  const now = new Date()
  const day = new Date(now.getTime() + (now.getUTCHours() < 9 ? 0 : 86_400_000)).toISOString().slice(0, 10)
  return { timeZone: 'UTC', hours: 'closed', overrides: [{ date: day, status: 'OPEN', start: '09:00', end: '10:00' }] }
}

async function pageWith (t: Test, browser: Browser, queue: QueueSettings, options: { env?: Record<string, string>; staleOpen?: boolean } = {}) {
  const h = await demoHarness(t, browser, { CONNECT_QUEUE_ID: 'simulated-queue', AVAILABILITY_REFRESH: '1 hour', ...options.env })
  h.sim.availability.setQueue('simulated-queue', queue)
  // The poll that picks the settings up (the one at start-up may have read the defaults).
  await h.app.availability!.tick()
  await h.app.availability!.tick()
  const context = await browser.newContext({ timezoneId: 'UTC', locale: 'en-GB' })
  t.teardown(() => context.close())
  const page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  // An answer the page got before the queue closed (it asks again only every 30 s).
  if (options.staleOpen) await page.route('**/chat/availability', (route) => route.fulfill({ json: { open: true, reason: 'open' }, headers: { 'access-control-allow-origin': '*' } }))
  await page.goto(`${h.demos.listed.url}/`)
  await page.locator('body[data-ready="true"]').waitFor()
  return { h, page, errors }
}

if (browser) {
  t.test('open with an agent: the start button, no notice', async (t) => {
    const { h, page, errors } = await pageWith(t, browser, {})
    t.ok(await page.isVisible('#start'))
    t.ok(await page.isHidden('#availability'))
    const asked = h.seen.find((s) => s.url === '/chat/availability')
    t.equal(asked?.status, 200, 'the page asked, cross-origin, and could read the answer')
    t.equal(asked?.origin, h.demos.listed.url)
    t.same(errors, [])
  })

  t.test('closed: "We\'re closed, back at 09:00" instead of the start button; no chat can be started', async (t) => {
    const { h, page, errors } = await pageWith(t, browser, closedUntilNineUtc())
    await page.locator('#availability:not([hidden])').waitFor()
    t.equal(await page.textContent('#availability'), 'We\'re closed, back at 09:00.')
    t.ok(await page.isHidden('#start'), 'no start button')
    t.equal(h.sim.requests.length, 0)
    t.same(errors, [])
    await screenshot(page, 'demo-availability-closed')
  })

  t.test('no agents staffed: "No agents right now" instead of the start button', async (t) => {
    const { page, errors } = await pageWith(t, browser, { agentsAvailable: 0, agentsStaffed: 0 })
    await page.locator('#availability:not([hidden])').waitFor()
    t.match(await page.textContent('#availability'), /^No agents right now/)
    t.ok(await page.isHidden('#start'), 'no start button')
    t.same(errors, [])
    await screenshot(page, 'demo-availability-no-agents')
  })

  t.test('REFUSE_WHEN_CLOSED and a page that asked before closing time: the start is refused and the page says when it opens', async (t) => {
    const { h, page, errors } = await pageWith(t, browser, closedUntilNineUtc(), { env: { REFUSE_WHEN_CLOSED: 'true' }, staleOpen: true })
    t.ok(await page.isVisible('#start'), 'the page still believes it is open')
    await page.fill('#name', 'Ann')
    await page.click('#start')
    await page.locator('#error[data-kind="closed"]').waitFor()
    t.equal(await page.textContent('#error'), 'We\'re closed, back at 09:00.', 'no countdown to the morning')
    t.equal(h.seen.find((s) => s.method === 'POST')?.status, 503)
    t.equal(h.sim.requests.length, 0, 'Connect was not called')
    t.same(errors, [])
  })
}
