// Shared by the browser tests: Debian's Chromium through playwright-core, the real gateway listening
// on a port, and the demo page served by its own server on another origin.
import type { Test } from 'tap'
import { chromium, type Browser, type Page } from 'playwright-core'
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { startDemoServer, type DemoServer } from '../../demo/server.js'
import type { SimulatorOptions } from '@connect-chat-gateway/simulator'
import type { AppDeps } from '../../src/app.js'
import { build, type Harness } from '../helper.js'

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
export const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url)

/** The browser for a whole test file, or undefined after planning the file as skipped. */
export async function launchBrowser (t: Test): Promise<Browser | undefined> {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI === 'true') throw new Error(`Chromium not found at ${CHROMIUM}; in CI .ci/run installs it`)
    t.plan(0, `browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`)
    return undefined
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => browser.close())
  return browser
}

/** What reached the gateway, as the server saw it: the browser's side of CORS is invisible otherwise. */
export interface Seen {
  method: string
  url: string
  origin?: string
  status: number
  contentType?: string
  idempotencyKey?: string
  requestHeaders?: string
  /** The browser's requests, not the demo server's own diagnosis preflight. */
  fromBrowser: boolean
}

export interface DemoHarness extends Harness {
  gatewayUrl: string
  seen: Seen[]
  /** A demo server whose page calls this gateway; `listed` ones are in ALLOWED_ORIGINS. */
  demos: { listed: DemoServer; unlisted: DemoServer }
  /** A fresh browser context (own localStorage) on the page of `demo`; page errors collected. */
  open (demo?: DemoServer): Promise<{ page: Page; errors: string[] }>
}

export async function demoHarness (t: Test, browser: Browser, env: Record<string, string> = {}, sim?: SimulatorOptions, deps?: AppDeps): Promise<DemoHarness> {
  let gatewayUrl = ''
  let participantUrl = ''
  const start = () => startDemoServer({ port: 0, host: '127.0.0.1', gatewayUrl: () => gatewayUrl, participantUrl: () => participantUrl })
  const listed = await start()
  const unlisted = await start()
  t.teardown(() => Promise.all([listed.close(), unlisted.close()]))

  const harness = await build(t, { ALLOWED_ORIGINS: listed.url, ...env }, { sim, deps })
  participantUrl = harness.sim.url
  const seen: Seen[] = []
  harness.app.addHook('onResponse', async (request, reply) => {
    const h = request.headers
    seen.push({
      method: request.method,
      url: request.url,
      origin: h.origin,
      status: reply.statusCode,
      contentType: h['content-type'],
      idempotencyKey: h['idempotency-key'] as string | undefined,
      requestHeaders: h['access-control-request-headers'],
      fromBrowser: /Chrome/.test(h['user-agent'] ?? '')
    })
  })
  await harness.app.listen({ port: 0, host: '127.0.0.1' })
  gatewayUrl = `http://127.0.0.1:${(harness.app.server.address() as AddressInfo).port}`

  const open = async (demo: DemoServer = listed) => {
    const context = await browser.newContext()
    t.teardown(() => context.close())
    const page = await context.newPage()
    const errors: string[] = []
    page.on('pageerror', (err) => errors.push(err.message))
    page.on('console', (msg) => { if (msg.type() === 'error' && /Content Security Policy/.test(msg.text())) errors.push(msg.text()) })
    await page.goto(`${demo.url}/`)
    await page.locator('body[data-ready="true"]').waitFor()
    return { page, errors }
  }
  return { ...harness, gatewayUrl, seen, demos: { listed, unlisted }, open }
}

export async function screenshot (page: Page, name: string) {
  await mkdir(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: new URL(`${name}.png`, ARTIFACTS).pathname, fullPage: true })
}

/** Waits for a condition outside the page (the simulator's records); the bound only proves "eventually". */
export async function until (condition: () => boolean, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
