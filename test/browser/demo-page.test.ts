// The demo page in Debian's Chromium, against the real gateway over HTTP on another origin.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { demoHarness, launchBrowser, screenshot, until } from './harness.js'
import { typescriptArgs } from '../service-process.js'

const STORAGE_KEY = 'connect-chat-gateway-demo:previous-chat'
const env = { RATE_LIMIT_MAX: '1000', MAX_OPEN_CHATS_PER_CALLER: '1000' }
const browser = await launchBrowser(t)

if (browser) {
  t.test('start from the listed origin -> preflight passes, ContactId shown, chatjs creates a CUSTOMER session', async (t) => {
    const h = await demoHarness(t, browser, env)
    const { page, errors } = await h.open()
    await page.fill('#name', 'Ann Example')
    await page.fill('#message', 'Hello, where is my order?')
    await page.click('#start')
    await page.locator('#chatjs[data-state="connected"]').waitFor()

    t.equal(h.sim.contacts.size, 1, 'one chat opened')
    const [contactId] = [...h.sim.contacts.keys()]
    t.equal(await page.textContent('#contact-id'), contactId, 'the page shows the ContactId Connect created')
    t.match(await page.textContent('#chatjs'), /Connected: this conversation runs through amazon-connect-chatjs/)
    t.same(h.sim.requests[0]?.input.ParticipantDetails, { DisplayName: 'Ann Example' })
    t.same(h.sim.requests[0]?.input.InitialMessage, { ContentType: 'text/plain', Content: 'Hello, where is my order?' })

    const preflight = h.seen.find((s) => s.method === 'OPTIONS')
    t.equal(preflight?.status, 204, 'the browser asked first (JSON + Idempotency-Key need a preflight) and was let through')
    t.match(preflight?.requestHeaders, /idempotency-key/)
    const post = h.seen.find((s) => s.method === 'POST')
    t.equal(post?.origin, h.demos.listed.url)
    t.equal(post?.status, 200)
    t.match(post?.contentType, /^application\/json/)
    t.match(post?.idempotencyKey, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'the click carried a UUID Idempotency-Key')

    const storage = (await page.context().storageState()).origins.find((o) => o.origin === h.demos.listed.url)?.localStorage
    const saved = JSON.parse(storage?.find((item) => item.name === STORAGE_KEY)?.value ?? 'null')
    t.type(saved?.resumeToken, 'string', 'the resume token is kept in localStorage')
    t.ok(await page.isHidden('#start-form'), 'the start form folds away while the chat is open')
    t.equal(await page.inputValue('#message'), '', 'and its first message is spent')
    t.same(errors, [], 'no script errors, no CSP violations')
    await screenshot(page, 'demo-chat-started')

    await page.click('#end-chat')
    await page.locator('#chatjs[data-state="ended"]').waitFor()
    t.equal(await page.textContent('#result-title'), 'Chat ended', 'the heading says so once it ended')
    t.ok(await page.isVisible('#start-form'), 'the form is back')
    t.ok(await page.isVisible('#resume'), 'offering to resume')
    await page.click('#resume')
    await page.locator('#result-title', { hasText: 'Previous chat resumed' }).waitFor()
    t.equal(h.sim.requests.length, 2)
    t.equal(h.sim.requests[1]?.input.InitialMessage, undefined, 'the resume does not send the first message again')
    t.equal(h.sim.contacts.size, 2)
  })

  t.test('double click -> two requests with one Idempotency-Key, one chat', async (t) => {
    // Connect answers slowly, so the second click certainly lands while the first is in flight.
    const h = await demoHarness(t, browser, env, { latencyMs: 500 })
    const { page } = await h.open()
    await page.fill('#name', 'Ann')
    await page.dblclick('#start')
    await page.locator('#chatjs[data-state="connected"]').waitFor()
    await until(() => h.seen.filter((s) => s.method === 'POST').length === 2, 'both clicks to be answered')

    const posts = h.seen.filter((s) => s.method === 'POST')
    t.same(posts.map((p) => p.status), [200, 200])
    t.equal(posts[0]?.idempotencyKey, posts[1]?.idempotencyKey, 'both clicks carried the same key')
    t.equal(h.sim.requests.length, 2, 'both reached Connect')
    t.equal(h.sim.requests[0]?.clientToken, h.sim.requests[1]?.clientToken, 'with the same ClientToken')
    t.equal(h.sim.contacts.size, 1, 'one chat opened')
    t.equal(h.sim.stats().replayed, 1)
    t.equal(await page.textContent('#contact-id'), [...h.sim.contacts.keys()][0])
    await screenshot(page, 'demo-double-click')
  })

  t.test('resume: the token is kept; chat still open in another tab -> "still open"; after it ends -> resumed', async (t) => {
    const h = await demoHarness(t, browser, env)
    const { page: first } = await h.open()
    t.ok(await first.isHidden('#resume'), 'nothing to resume at first')
    await first.fill('#name', 'Ann')
    await first.click('#start')
    await first.locator('#chatjs[data-state="connected"]').waitFor()
    const firstId = await first.textContent('#contact-id') ?? ''

    // A second tab of the same site (same localStorage) while the first still holds the chat: a
    // reload would end it, since the page ends its chat on pagehide.
    const other = await browser.newContext({ storageState: await first.context().storageState() })
    t.teardown(() => other.close())
    const page = await other.newPage()
    await page.goto(`${h.demos.listed.url}/`)
    await page.locator('body[data-ready="true"]').waitFor()
    await page.fill('#name', 'Ann')
    await page.click('#resume')
    await page.locator('#error[data-kind="still-open"]').waitFor()
    t.match(await page.textContent('#error'), /previous chat is still open/)
    t.equal(h.seen.filter((s) => s.method === 'POST').at(-1)?.status, 409)
    t.equal(h.sim.contacts.size, 1, 'Connect refused, nothing opened')

    h.sim.endChat(firstId)
    await page.click('#resume')
    await page.locator('#result-title', { hasText: 'Previous chat resumed' }).waitFor()
    const secondId = await page.textContent('#contact-id')
    t.not(secondId, firstId)
    t.equal(await page.textContent('#continued-from'), firstId, 'the page shows which chat it continues')
    t.same(h.sim.requests.at(-1)?.input.PersistentChat, { RehydrationType: 'ENTIRE_PAST_SESSION', SourceContactId: firstId })
    await page.locator('#chatjs[data-state="connected"]').waitFor()
    await screenshot(page, 'demo-resumed')
  })

  t.test('Connect chat quota reached -> "busy" with a Retry-After countdown; buttons wait, then the same attempt succeeds', async (t) => {
    const h = await demoHarness(t, browser, env)
    h.sim.setFault({ type: 'LimitExceededException', retryAfterSeconds: 4 })
    const { page } = await h.open()
    await page.fill('#name', 'Ann')
    await page.click('#start')
    await page.locator('#error[data-kind="busy"]').waitFor()
    t.match(await page.textContent('#error'), /busy right now/)
    const shown = Number(await page.textContent('#retry-in'))
    t.ok(shown >= 1 && shown <= 4, `counts down from Retry-After (shows ${shown})`)
    t.ok(await page.isDisabled('#start'), 'the button waits')
    await screenshot(page, 'demo-busy')

    h.sim.setFault(null)
    await page.locator('#start:enabled').waitFor({ timeout: 15_000 })
    t.match(await page.textContent('#error'), /try again now/)
    await page.click('#start')
    await page.locator('#chatjs[data-state="connected"]').waitFor()
    const posts = h.seen.filter((s) => s.method === 'POST')
    t.same(posts.map((p) => p.status), [503, 200])
    t.equal(posts[0]?.idempotencyKey, posts[1]?.idempotencyKey, 'a retry after 503 is the same attempt')
    t.equal(h.sim.contacts.size, 1)
  })

  t.test('npm run dev prints both URLs; its demo page starts a chat; SIGTERM exits 0', async (t) => {
    const { ALLOWED_ORIGINS: _o, DEMO_PORT: _d, ...inherited } = process.env
    const dev = spawn(process.execPath, typescriptArgs('demo/dev.ts'), {
      cwd: fileURLToPath(new URL('../../', import.meta.url)),
      env: { ...inherited, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    dev.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
    dev.stderr.resume()
    const exited = once(dev, 'exit')
    t.teardown(() => { if (dev.exitCode === null) dev.kill('SIGKILL') })
    await until(() => /demo page/.test(out) || dev.exitCode !== null, 'npm run dev to print its URLs', 30_000)
    t.match(out, /SIMULATED/)
    const gateway = /gateway\s+(http:\/\/\S+)\/chat\/start/.exec(out)?.[1]
    const demoUrl = /demo page\s+(http:\/\/\S+)/.exec(out)?.[1]
    t.ok(gateway && demoUrl, 'both URLs printed')

    const context = await browser.newContext()
    t.teardown(() => context.close())
    const page = await context.newPage()
    await page.goto(demoUrl ?? 'about:blank')
    await page.locator('body[data-ready="true"]').waitFor()
    t.equal(await page.textContent('#gateway-url'), gateway, 'the page calls the printed gateway')
    await page.fill('#name', 'Ann')
    await page.click('#start')
    await page.locator('#chatjs[data-state="connected"]').waitFor()
    t.match(await page.textContent('#contact-id'), /^[0-9a-f-]{36}$/)

    dev.kill('SIGTERM')
    const [code] = await exited
    t.equal(code, 0)
  })

  t.test('past RATE_LIMIT_MAX -> "rate limited" with a countdown, and Connect is not called again', async (t) => {
    const h = await demoHarness(t, browser, { RATE_LIMIT_MAX: '1', RATE_LIMIT_WINDOW: '1 minute' })
    const { page } = await h.open()
    await page.fill('#name', 'Ann')
    await page.click('#start')
    await page.locator('#chatjs[data-state="connected"]').waitFor()
    await page.click('#end-chat')
    await page.fill('#name', 'Bob')
    await page.click('#start')
    await page.locator('#error[data-kind="rate-limited"]').waitFor()
    t.match(await page.textContent('#error'), /rate limited/)
    const shown = Number(await page.textContent('#retry-in'))
    t.ok(shown > 0 && shown <= 60, `countdown from Retry-After (shows ${shown})`)
    t.ok(await page.isDisabled('#start'))
    t.equal(h.sim.requests.length, 1, 'the limited request never reached Connect')
    await screenshot(page, 'demo-rate-limited')
  })
}
