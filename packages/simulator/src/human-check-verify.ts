// Stand-ins for the verify endpoints of Turnstile, hCaptcha and reCAPTCHA (all three take a form
// with secret, response and remoteip, and answer { success, hostname, … }), so the human check runs
// offline. A token `pass:<hostname>:<anything>` passes once, solved on <hostname>; anything else fails.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { randomUUID } from 'node:crypto'
import type { Clock } from './clock.js'
import { MAX_BODY_BYTES, readBody, sendJson } from './start-chat-wire.js'

export const VERIFY_PATH = /^\/__verify\/(turnstile|hcaptcha|recaptcha)$/
/** The secret the stand-ins accept; any other is answered as the providers do (invalid-input-secret). */
export const SIMULATED_VERIFY_SECRET = 'simulated-human-check-secret'
const SEEN_MAX = 10_000

export class VerifyStandIn {
  private readonly seen = new Set<string>()
  verified = 0

  constructor (private readonly clock: Clock) {}

  async handle (req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
    if (req.method !== 'POST' || !VERIFY_PATH.test(path)) return false
    this.verified++
    const body = await readBody(req, MAX_BODY_BYTES)
    const form = new URLSearchParams(body.ok ? body.text : '')
    const token = form.get('response') ?? ''
    sendJson(res, randomUUID(), 200, { challenge_ts: new Date(this.clock.now()).toISOString(), ...this.verdict(form.get('secret'), token) })
    return true
  }

  private verdict (secret: string | null, token: string): object {
    if (secret !== SIMULATED_VERIFY_SECRET) return { success: false, 'error-codes': ['invalid-input-secret'] }
    const match = /^pass:([a-z0-9.-]+):.+$/i.exec(token)
    if (!match) return { success: false, 'error-codes': ['invalid-input-response'] }
    if (this.seen.has(token)) return { success: false, 'error-codes': ['timeout-or-duplicate'] }
    if (this.seen.size >= SEEN_MAX) this.seen.delete(this.seen.values().next().value!)
    this.seen.add(token)
    return { success: true, hostname: match[1] }
  }

  reset (): void {
    this.seen.clear()
    this.verified = 0
  }
}
