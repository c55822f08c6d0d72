// A whole conversation in Debian's Chromium: the demo page, the real gateway, the unmodified
// amazon-connect-chatjs from node_modules, and the simulated Participant Service with its agent.
import t from 'tap'
import type { Page } from 'playwright-core'
import { fileURLToPath } from 'node:url'
import type { SimulatorOptions } from '@connect-chat-gateway/simulator'
import { demoHarness, launchBrowser, screenshot, until, type DemoHarness } from './harness.js'

const env = { RATE_LIMIT_MAX: '1000', MAX_OPEN_CHATS_PER_CALLER: '1000' }
/** A quick agent; a test that needs to see typing makes it type for longer. */
const sim = (agent: { joinDelayMs?: number; typingMs?: number } = {}): SimulatorOptions =>
  ({ participant: { agent: { joinDelayMs: 50, typingMs: 50, ...agent } } })
const browser = await launchBrowser(t)

/** The little of the page's DOM these tests read (the project compiles without the DOM library). */
interface PageGlobals {
  document: { activeElement: { id: string } | null; documentElement: { scrollWidth: number; clientWidth: number } }
}

const bubbles = (page: Page, who: 'agent' | 'customer') => page.locator(`#transcript .bubble.${who} .text`)

async function startConversation (h: DemoHarness, name = 'Ann Example', first?: string) {
  const opened = await h.open()
  await opened.page.fill('#name', name)
  if (first) await opened.page.fill('#message', first)
  await opened.page.click('#start')
  await opened.page.locator('#chatjs[data-state="connected"]').waitFor()
  const contactId = (await opened.page.textContent('#contact-id')) ?? ''
  return { ...opened, contactId }
}

async function send (page: Page, text: string) {
  await page.fill('#compose', text)
  await page.keyboard.press('Enter')
}

if (browser) {
  t.test('start, connect, the agent greets by name, the customer writes, the agent answers', async (t) => {
    const h = await demoHarness(t, browser, env, sim())
    const { page, errors, contactId } = await startConversation(h, 'Ann Example', 'Hello, where is my order?')

    await bubbles(page, 'agent').filter({ hasText: 'Hi Ann Example' }).waitFor()
    await bubbles(page, 'agent').filter({ hasText: 'You said: Hello, where is my order?' }).waitFor()
    t.equal(await bubbles(page, 'customer').first().textContent(), 'Hello, where is my order?', 'the first message is in the transcript')
    t.ok(await page.locator('#transcript .event', { hasText: 'Sam (simulated agent) joined the chat' }).count(), 'the join is shown')
    t.equal(await page.evaluate(() => (globalThis as unknown as PageGlobals).document.activeElement?.id), 'compose', 'focus goes to the message box once connected')

    await send(page, 'It is order 42')
    await bubbles(page, 'agent').filter({ hasText: 'You said: It is order 42' }).waitFor()
    t.equal(await bubbles(page, 'customer').filter({ hasText: 'It is order 42' }).count(), 1, 'my message shown once (answer and echo merged)')
    t.equal(await page.inputValue('#compose'), '', 'the box is cleared')
    const mine = h.sim.participant?.transcript(contactId).filter((i) => i.Type === 'MESSAGE' && i.ParticipantRole === 'CUSTOMER')
    t.same(mine?.map((i) => i.Content), ['Hello, where is my order?', 'It is order 42'], 'the simulator got the message through chatjs')
    t.same(errors, [], 'no script errors, no CSP violations')
    await screenshot(page, 'demo-conversation')

    if (process.env.UPDATE_SCREENSHOT === '1') {
      await send(page, 'help')
      await bubbles(page, 'agent').filter({ hasText: 'I understand' }).waitFor()
      await page.setViewportSize({ width: 760, height: 600 })
      await page.mouse.move(0, 0)
      await page.screenshot({ path: fileURLToPath(new URL('../../docs/demo.png', import.meta.url)), fullPage: true })
    }
  })

  t.test('markdown: written and echoed as markdown, shown formatted through DOMPurify; nothing in it runs; plain text stays text', async (t) => {
    const h = await demoHarness(t, browser, env, sim())
    const { page, contactId } = await startConversation(h)
    await bubbles(page, 'agent').first().waitFor()
    await send(page, 'my order is **42**')
    await bubbles(page, 'agent').filter({ hasText: 'You said: my order is 42' }).waitFor()
    t.equal(await bubbles(page, 'agent').last().locator('strong').textContent(), '42', 'the agent\'s markdown answer is bold')
    t.equal(await bubbles(page, 'customer').last().locator('strong').textContent(), '42', 'so is the customer\'s own message')
    const sent = h.sim.participant?.transcript(contactId).filter((i) => i.Type === 'MESSAGE' && i.ParticipantRole === 'CUSTOMER').at(-1)
    t.equal(sent?.ContentType, 'text/markdown', 'sent as markdown: the chat allows MESSAGING_MARKDOWN')

    h.sim.participant?.agentSays(contactId, 'Hostile <img src="data:," onerror="globalThis.pwned=1"> [link](javascript:globalThis.pwned=2) <script>globalThis.pwned=3</script>', 'text/markdown')
    await bubbles(page, 'agent').filter({ hasText: 'Hostile' }).waitFor()
    const html = await bubbles(page, 'agent').last().innerHTML()
    t.notMatch(html, /onerror|<script|javascript:/i, `sanitised: ${html}`)
    t.equal(await page.evaluate(() => (globalThis as unknown as { pwned?: number }).pwned), undefined, 'nothing ran')

    h.sim.participant?.agentSays(contactId, 'Plain <b>not bold</b> **nor this**')
    await bubbles(page, 'agent').filter({ hasText: 'Plain' }).waitFor()
    t.equal(await bubbles(page, 'agent').last().textContent(), 'Plain <b>not bold</b> **nor this**', 'text/plain is shown as written')
  })

  t.test('typing is shown both ways: the agent\'s indicator, and the customer\'s typing reaches Connect', async (t) => {
    // The agent types for long enough that seeing the indicator does not depend on timing.
    const h = await demoHarness(t, browser, env, sim({ typingMs: 3_000 }))
    const { page } = await startConversation(h)
    await page.locator('#typing:visible', { hasText: 'Sam (simulated agent) is typing…' }).waitFor()
    await bubbles(page, 'agent').filter({ hasText: 'Hi Ann' }).waitFor({ timeout: 15_000 })
    t.ok(await page.isHidden('#typing'), 'the indicator goes when the answer arrives')

    await page.locator('#compose').pressSequentially('hel')
    await until(() => (h.sim.participant?.stats().customerTyping ?? 0) >= 1, 'the customer\'s typing event')
    t.pass('chatjs sent the customer\'s typing event')
  })

  t.test('the customer ends the chat with the button', async (t) => {
    const h = await demoHarness(t, browser, env, sim())
    const { page, contactId } = await startConversation(h)
    await bubbles(page, 'agent').first().waitFor()
    await page.click('#end-chat')
    await page.locator('#chatjs[data-state="ended"]').waitFor()
    await page.locator('#transcript .event', { hasText: 'Chat ended' }).waitFor()
    t.ok(await page.locator('#transcript .event', { hasText: 'Ann Example left the chat' }).count(), 'shows who left')
    t.ok(await page.isDisabled('#compose'), 'nothing more can be sent')
    t.ok(await page.isHidden('#end-chat'))
    t.ok(await page.isVisible('#resume'), 'the chat can be resumed')
    t.ok((h.sim.contacts.get(contactId)?.endsAt ?? Infinity) <= Date.now(), 'the contact ended in Connect')
  })

  t.test('the agent ends the chat when the customer says bye', async (t) => {
    const h = await demoHarness(t, browser, env, sim())
    const { page } = await startConversation(h)
    await bubbles(page, 'agent').first().waitFor()
    await send(page, 'Thanks, bye')
    await page.locator('#chatjs[data-state="ended"]').waitFor()
    t.ok(await bubbles(page, 'agent').filter({ hasText: 'Goodbye' }).count(), 'the agent said goodbye')
    t.ok(await page.locator('#transcript .event', { hasText: 'Sam (simulated agent) left the chat' }).count())
    t.ok(await page.isDisabled('#compose'))
    await screenshot(page, 'demo-ended-by-agent')
  })

  t.test('resume: the old transcript above the new chat', async (t) => {
    const h = await demoHarness(t, browser, env, sim())
    const { page, contactId: firstId } = await startConversation(h)
    await send(page, 'My order is 42')
    await bubbles(page, 'agent').filter({ hasText: 'You said: My order is 42' }).waitFor()
    await page.click('#end-chat')
    await page.locator('#chatjs[data-state="ended"]').waitFor()

    await page.click('#resume')
    await page.locator('#result-title', { hasText: 'Previous chat resumed' }).waitFor()
    await page.locator('#chatjs[data-state="connected"]').waitFor()
    await bubbles(page, 'agent').filter({ hasText: 'Welcome back, Ann Example' }).waitFor()
    await page.locator('#transcript .divider', { hasText: 'Previous conversation' }).waitFor()

    const rows = await page.locator('#transcript > li').evaluateAll((lis) => lis.map((li) => ({
      text: li.textContent ?? '', past: li.classList.contains('past'), divider: li.classList.contains('divider')
    })))
    const at = (pattern: RegExp) => rows.findIndex((r) => pattern.test(r.text))
    t.ok(rows[at(/My order is 42/)]?.past, 'the old message is marked as the past')
    t.ok(at(/Previous conversation/) < at(/My order is 42/), 'under the "previous conversation" heading')
    t.ok(at(/My order is 42/) < at(/Resumed today/), 'above the new chat')
    t.ok(at(/Resumed today/) < at(/Welcome back/), 'and the new greeting below')
    t.notOk(rows[at(/Welcome back/)]?.past)
    t.equal(await page.textContent('#continued-from'), firstId)
    await screenshot(page, 'demo-resumed-transcript')
  })

  t.test('the WebSocket drops; chatjs reconnects and nothing said meanwhile is lost', async (t) => {
    const h = await demoHarness(t, browser, env, sim())
    const { page, contactId } = await startConversation(h)
    await bubbles(page, 'agent').filter({ hasText: 'Hi Ann' }).waitFor()
    t.equal(h.sim.participant?.stats().websocketsOpened, 1)

    // Cut the socket and speak before chatjs can have reconnected: this message is pushed to nobody.
    h.sim.participant?.fault({ type: 'dropWebSocket', contactId })
    h.sim.participant?.agentSays(contactId, 'Said while you were away')
    await bubbles(page, 'agent').filter({ hasText: 'Said while you were away' }).waitFor({ timeout: 20_000 })
    await page.locator('#chatjs[data-state="connected"]').waitFor()
    t.equal(h.sim.participant?.stats().websocketsOpened, 2, 'chatjs opened a new WebSocket')
    t.equal(await bubbles(page, 'agent').filter({ hasText: 'Hi Ann' }).count(), 1, 'nothing shown twice')

    await send(page, 'still there?')
    await bubbles(page, 'agent').filter({ hasText: 'You said: still there?' }).waitFor()
    t.pass('the conversation goes on over the new socket')
  })

  t.test('usable at 360 px: the chat fits, the controls are reachable by keyboard', async (t) => {
    const h = await demoHarness(t, browser, env, sim())
    const { page } = await h.open()
    await page.setViewportSize({ width: 360, height: 740 })
    await page.focus('#name')
    await page.keyboard.type('Ann')
    await page.keyboard.press('Enter')
    await page.locator('#chatjs[data-state="connected"]').waitFor()
    await bubbles(page, 'agent').first().waitFor()
    await page.keyboard.type('hi from a phone')
    await page.keyboard.press('Enter')
    await bubbles(page, 'agent').filter({ hasText: 'hi from a phone' }).waitFor()
    const overflow = await page.evaluate(() => {
      const root = (globalThis as unknown as PageGlobals).document.documentElement
      return root.scrollWidth - root.clientWidth
    })
    t.equal(overflow, 0, 'no horizontal scrolling')
    t.equal(await page.getAttribute('#transcript', 'role'), 'log', 'the transcript is announced as a log')
    t.equal(await page.locator('label[for="compose"]').count(), 1, 'the message box has a label')
    await screenshot(page, 'demo-360px')
  })
}
