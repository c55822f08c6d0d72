// The demo page and the chat quota in Debian's Chromium: the ALTCHA widget when the gateway asks for a
// human check, and chats ended at the gateway when the customer ends them or leaves the page.
import t from 'tap'
import { demoHarness, launchBrowser, until } from './harness.js'

const env = { RATE_LIMIT_MAX: '1000', MAX_OPEN_CHATS_PER_CALLER: '1000' }
const browser = await launchBrowser(t)

if (browser) {
  t.test('HUMAN_CHECK=pow: the page shows the ALTCHA widget, solves the challenge and starts the chat with the proof', async (t) => {
    const h = await demoHarness(t, browser, { ...env, HUMAN_CHECK: 'pow', HUMAN_CHECK_WHEN: 'always' }, undefined,
      { humanCheck: { pow: { cost: 100, counterMin: 10, counterMax: 50 } } })
    const { page, errors } = await h.open()
    await page.fill('#name', 'Ann Example')
    await page.click('#start')
    await page.locator('altcha-widget').waitFor()
    await page.locator('#chatjs[data-state="connected"]').waitFor({ timeout: 60_000 })
    t.equal(h.sim.contacts.size, 1, 'one chat, opened with the proof')
    const posts = h.seen.filter((s) => s.method === 'POST' && s.fromBrowser).map((s) => s.status)
    t.same(posts, [403, 200], 'asked for a check, then started')
    t.ok(h.seen.some((s) => s.method === 'GET' && s.url === '/chat/challenge' && s.status === 200), 'the widget fetched its challenge from the gateway')
    t.ok(await page.isHidden('#human-check'), 'the check is put away once the chat started')
    t.same(errors, [], 'no script errors, no CSP violations')
  })

  t.test('End chat, and leaving the page, end the chat at the gateway (StopContact)', async (t) => {
    const h = await demoHarness(t, browser, env)
    const { page } = await h.open()
    await page.fill('#name', 'Ann')
    await page.click('#start')
    await page.locator('#chatjs[data-state="connected"]').waitFor()
    await page.click('#end-chat')
    await until(() => h.sim.stats().stopped === 1, 'the gateway to stop the chat')
    // Connect has the stop before the gateway's answer is seen: wait for that too.
    await until(() => h.seen.some((s) => s.method === 'POST' && s.url === '/chat/end' && s.status === 204), 'the gateway to answer 204')
    t.pass('ended at the gateway: 204')

    // Another request, so not taken for a repeat of the first click.
    await page.fill('#name', 'Ann Again')
    await page.click('#start')
    await until(() => h.sim.contacts.size === 2, 'a second chat')
    await page.locator('#chatjs[data-state="connected"]').waitFor()
    // The customer closes the tab: pagehide sends the end token with navigator.sendBeacon.
    await page.close({ runBeforeUnload: true })
    await until(() => h.sim.stats().stopped === 2, 'the beacon to end the second chat')
    await until(() => h.seen.filter((s) => s.url === '/chat/end').length === 2, 'the beacon\'s answer')
    const beacon = h.seen.filter((s) => s.url === '/chat/end').at(-1)
    t.match(beacon?.contentType, /^text\/plain/, 'sent as text/plain, so no preflight was needed')
    t.equal(beacon?.status, 204)
  })
}
