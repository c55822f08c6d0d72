import t from 'tap'
import { writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { startDemoServer } from '../../demo/server.js'
import type { App } from '../../src/app.js'
import { build } from '../helper.js'
import { launchBrowser, until } from './harness.js'

// The demo page offers the gateway's widget profiles and starts the chat on the one picked.

const browser = await launchBrowser(t)

if (browser) {
  t.test('the page lists the profiles; a chat started on one reaches Connect with its flow and attributes', async (t) => {
    let gatewayUrl = ''
    let participantUrl = ''
    const gateway: { app?: App } = {}
    const demo = await startDemoServer({
      port: 0, host: '127.0.0.1', gatewayUrl: () => gatewayUrl, participantUrl: () => participantUrl,
      widgets: () => ['default', ...(gateway.app?.widgets.ids() ?? [])]
    })
    t.teardown(() => demo.close())
    const path = `${t.testdir()}/widgets.json`
    writeFileSync(path, JSON.stringify({
      widgets: [
        { id: 'sales', contactFlowId: 'flow-sales', allowedOrigins: [demo.url], attributes: { queue: 'sales' } },
        { id: 'support', contactFlowId: 'flow-support', allowedOrigins: [demo.url], attributes: { queue: 'support' } }
      ]
    }))
    const h = await build(t, { ALLOWED_ORIGINS: demo.url, WIDGETS_FILE: path })
    gateway.app = h.app
    participantUrl = h.sim.url
    await h.app.listen({ port: 0, host: '127.0.0.1' })
    gatewayUrl = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`

    const context = await browser.newContext()
    t.teardown(() => context.close())
    const page = await context.newPage()
    const errors: string[] = []
    page.on('pageerror', (err) => errors.push(err.message))
    await page.goto(`${demo.url}/`)
    await page.locator('body[data-ready="true"]').waitFor()
    t.ok(await page.locator('#widget-field').isVisible(), 'the picker is shown')
    t.same(await page.locator('#widget option').evaluateAll((options) => options.map((o) => (o as unknown as { value: string }).value)), ['default', 'sales', 'support'])
    await page.selectOption('#widget', 'support')
    await page.fill('#name', 'Ann Example')
    await page.click('#start')
    await page.locator('#chatjs[data-state="connected"]').waitFor()
    await until(() => h.sim.requests.length === 1, 'the start to reach Connect')
    t.match(h.sim.requests[0]!.input, { ContactFlowId: 'flow-support', Attributes: { queue: 'support' } })
    t.same(errors, [])
  })
}
