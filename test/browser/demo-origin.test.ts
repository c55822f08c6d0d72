// What only a browser can prove about origins: its CORS checks, its preflight, and the text/plain
// POST that skips the preflight, against the real gateway; the demo page served on two origins.
import t from 'tap'
import type { Page } from 'playwright-core'
import { get } from 'node:http'
import { startDemoServer } from '../../demo/server.js'
import { demoHarness, launchBrowser, screenshot, type DemoHarness } from './harness.js'

const env = { RATE_LIMIT_MAX: '1000', MAX_OPEN_CHATS_PER_CALLER: '1000' }
const browser = await launchBrowser(t)

interface Outcome { status?: number; body?: { data?: { startChatResult?: { ContactId?: string } } }; blocked?: string }

/** A "simple" cross-origin request: text/plain and no custom header, so no preflight. */
function postTextPlain (page: Page, url: string): Promise<Outcome> {
  return page.evaluate(async (url): Promise<Outcome> => {
    try {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ ParticipantDetails: { DisplayName: 'Ann' } }) })
      return { status: res.status, body: await res.json() as Outcome['body'] }
    } catch (err) {
      return { blocked: String(err) }
    }
  }, url)
}

/** What reached /chat/start (the page also asks /chat/availability when it loads). */
const startRequests = (h: DemoHarness) => h.seen.filter((s) => s.url.startsWith('/chat/start'))

if (browser) {
  t.test('the page on an unlisted origin -> "not allowed", the preflight refused, Connect never called', async (t) => {
    const h = await demoHarness(t, browser, env)
    const { page } = await h.open(h.demos.unlisted)
    await page.fill('#name', 'Ann')
    await page.click('#start')
    await page.locator('#error[data-kind="not-allowed"]').waitFor()
    t.match(await page.textContent('#error'), /Not allowed/)
    t.match(await page.textContent('#error'), h.demos.unlisted.url, 'names the refused origin')
    t.equal(h.sim.requests.length, 0, 'the simulator saw no call')
    t.same(startRequests(h).filter((s) => s.fromBrowser).map((s) => [s.method, s.origin, s.status]), [['OPTIONS', h.demos.unlisted.url, 403]],
      'the browser stopped at the refused preflight')
    await screenshot(page, 'demo-not-allowed')
  })

  t.test('text/plain POST from an unlisted origin skips the preflight and is still refused before Connect', async (t) => {
    const h = await demoHarness(t, browser, env)
    const { page } = await h.open(h.demos.unlisted)
    const result = await postTextPlain(page, `${h.gatewayUrl}/chat/start`)
    t.match(result, { blocked: /TypeError/ }, 'the page cannot read the answer')
    t.same(startRequests(h).map((s) => [s.method, s.origin, s.status]), [['POST', h.demos.unlisted.url, 403]],
      'the POST itself reached the gateway (no preflight) and was answered 403')
    t.equal(h.sim.requests.length, 0, 'the origin policy, not CORS, kept it from Connect')
  })

  t.test('text/plain POST from the listed origin -> no preflight, chat started, answer readable', async (t) => {
    const h = await demoHarness(t, browser, env)
    const { page } = await h.open()
    const result = await postTextPlain(page, `${h.gatewayUrl}/chat/start`)
    t.equal(result.status, 200)
    t.equal(result.body?.data?.startChatResult?.ContactId, [...h.sim.contacts.keys()][0])
    t.same(startRequests(h).map((s) => s.method), ['POST'], 'no preflight for a simple request')
    t.match(startRequests(h)[0]?.contentType, /^text\/plain/)
  })

  t.test('gateway not running -> "cannot reach", not "not allowed"', async (t) => {
    const h = await demoHarness(t, browser, env)
    await h.app.close()
    const { page } = await h.open()
    await page.fill('#name', 'Ann')
    await page.click('#start')
    await page.locator('#error[data-kind="unreachable"]').waitFor()
    t.match(await page.textContent('#error'), /Cannot reach the chat service/)
  })

  t.test('the demo server serves its page, chatjs and config; nothing else from node_modules', async (t) => {
    const demo = await startDemoServer({ port: 0, host: '127.0.0.1', gatewayUrl: (host) => `http://${host}:9/` })
    t.teardown(() => demo.close())
    const page = await fetch(`${demo.url}/`)
    t.equal(page.status, 200)
    t.match(page.headers.get('content-security-policy'), /connect-src 'self' http:\/\/127\.0\.0\.1:9 https:\/\/\*\.amazonaws\.com wss:\/\/\*\.amazonaws\.com;/,
      'the page may call its gateway, and chatjs Amazon\'s Participant Service')
    t.same(await (await fetch(`${demo.url}/config.json`)).json(), { gatewayUrl: 'http://127.0.0.1:9' })
    const chatjs = await fetch(`${demo.url}/vendor/amazon-connect-chat.js`)
    t.equal(chatjs.status, 200)
    t.match(await chatjs.text(), /ChatSession/)
    t.equal((await fetch(`${demo.url}/vendor/package.json`)).status, 404)
    t.equal((await fetch(`${demo.url}/vendor/index.d.ts`)).status, 404)
    for (const source of ['server.ts', 'dev.ts']) t.equal((await fetch(`${demo.url}/${source}`)).status, 404, `not its own source (${source})`)
    t.equal((await fetch(`${demo.url}/app.js`)).status, 200, 'the page\'s script')
    const oddHost = await new Promise<string>((resolve, reject) => {
      get(`${demo.url}/config.json`, { headers: { host: 'not a host' } }, (res) => {
        let body = ''
        res.on('data', (chunk: Buffer) => { body += chunk.toString() }).on('end', () => resolve(body))
      }).on('error', reject)
    })
    t.same(JSON.parse(oddHost), { gatewayUrl: 'http://localhost:9' }, 'an unparsable Host header falls back to localhost')
  })

  t.test('with a local Participant Service, the page and its CSP point chatjs there and nowhere else', async (t) => {
    const demo = await startDemoServer({ port: 0, host: '127.0.0.1', gatewayUrl: () => 'http://127.0.0.1:9', participantUrl: () => 'http://127.0.0.1:7/' })
    t.teardown(() => demo.close())
    const page = await fetch(`${demo.url}/`)
    t.match(page.headers.get('content-security-policy'), /connect-src 'self' http:\/\/127\.0\.0\.1:9 http:\/\/127\.0\.0\.1:7 ws:\/\/127\.0\.0\.1:7;/)
    t.same(await (await fetch(`${demo.url}/config.json`)).json(), { gatewayUrl: 'http://127.0.0.1:9', participantUrl: 'http://127.0.0.1:7' })
  })

  t.test('chatjs check is not vacuous: details without ParticipantId give no usable session', async (t) => {
    const h = await demoHarness(t, browser, env)
    const { page } = await h.open()
    const outcome = await page.evaluate(() => {
      const chatjs = (globalThis as unknown as { connect: { ChatSession: { create (a: object): { getChatDetails (): unknown }; SessionTypes: { CUSTOMER: string } } } }).connect.ChatSession
      const session = chatjs.create({ chatDetails: { ContactId: 'c-1', ParticipantToken: 't' }, type: chatjs.SessionTypes.CUSTOMER, options: { region: 'us-east-1' }, disableCSM: true })
      try {
        session.getChatDetails()
        return 'usable'
      } catch {
        return 'unusable'
      }
    })
    t.equal(outcome, 'unusable')
  })
}
