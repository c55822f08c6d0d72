import fc from 'fast-check'
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { ORIGIN, startChat } from '../helper.js'
import { CUSTOMER_SECRET, mint } from '../trust/tokens.js'
import { oddString, validBody } from './arbitraries.js'
import { fuzzer, runs, seedOptions } from './harness.js'
import { ALLOWED_ATTRIBUTES } from './oracle.js'

// A property over random bodies and headers: whatever a caller sends, without a token the gateway
// or the site's backend signed, Connect never receives a CustomerId, a related contact, segment
// attributes other than the profile's own, an authenticated status, a disconnect setting or
// streamed replies the profile did not turn on.

const GUIDE = { 'connect:Subtype': { ValueString: 'connect:Guide' } }

t.test('no body alone ever produces CustomerId, SegmentAttributes, RelatedContactId or an authenticated status', async (t) => {
  const path = `${t.testdir()}/widgets.json`
  writeFileSync(path, JSON.stringify({ widgets: [{ id: 'guide', contactFlowId: 'flow-guide', allowedOrigins: [ORIGIN], segmentAttributes: GUIDE, relatedChats: true }] }))
  const f = await fuzzer(t, { WIDGETS_FILE: path, RELATED_CHATS: 'true', CUSTOMER_JWT_SECRET: CUSTOMER_SECRET })

  // Real tokens of the wrong kind, and a real related-chat token with its signature broken.
  const issued = (await startChat(f.app, { ParticipantDetails: { DisplayName: 'seed' } })).json().data
  const [head, payload] = (issued.relatedToken as string).split('.')
  const otherSecret = new TextEncoder().encode('x'.repeat(40))
  const lookalikes = [
    issued.resumeToken, issued.endToken, `${head}.${payload}.${'A'.repeat(43)}`, `${head}.${payload}.`,
    await mint({ sub: 'attacker', attributes: {} }, otherSecret), 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.'
  ]
  f.calls()

  const anyValue = fc.oneof(oddString(20), fc.jsonValue({ maxDepth: 3 }), fc.constantFrom<unknown>(
    'cust-1', issued.startChatResult.ContactId, ['AGENT'], { ResponseMode: 'INCREMENTAL' }, { ResponseMode: 'COMPLETE' },
    { 'connect:CustomerAuthentication': { ValueString: 'AUTHENTICATED' } }, GUIDE))
  // Up to two forged fields per body, so bodies with none (which must start plain chats) come up too.
  const forging = fc.array(fc.oneof(
    fc.tuple(fc.constantFrom('SegmentAttributes', 'CustomerId', 'RelatedContactId', 'DisconnectOnCustomerExit', 'ParticipantConfiguration'), anyValue),
    fc.tuple(fc.constant('RelatedContactToken'), fc.oneof(fc.constantFrom(...lookalikes), oddString(60))),
    fc.tuple(fc.constant('Attributes'), fc.dictionary(fc.constantFrom('topic', 'connect:CustomerAuthentication', 'CustomerId', 'customerId'), fc.string({ maxLength: 20 }), { maxKeys: 2 }))
  ), { maxLength: 2 }).map((entries) => Object.fromEntries(entries))
  const authorization = fc.option(fc.oneof(fc.constantFrom(...lookalikes).map((tok) => `Bearer ${tok}`), oddString(40).map((s) => `Bearer ${s}`)), { freq: 2 })

  let started = 0
  await fc.assert(fc.asyncProperty(validBody, forging, authorization, fc.boolean(), async (body, extra, auth, guide) => {
    const res = await f.app.inject({
      method: 'POST',
      url: guide ? '/chat/start/guide' : '/chat/start',
      headers: { 'content-type': 'application/json', ...(auth === null ? {} : { authorization: auth }) },
      payload: JSON.stringify({ ...body, ...extra })
    })
    if (res.statusCode >= 500) throw new Error(`${res.statusCode}: ${res.body}`)
    const calls = f.calls()
    if (res.statusCode !== 200) {
      if (calls !== 0) throw new Error(`Connect called for a refused start (${res.statusCode})`)
      return
    }
    started++
    const input = f.sim.requests.at(-1)!.input
    for (const field of ['CustomerId', 'RelatedContactId', 'DisconnectOnCustomerExit'] as const) {
      if (field in input) throw new Error(`${field} reached Connect from a body alone`)
    }
    const segments = JSON.stringify(input.SegmentAttributes)
    if (segments !== (guide ? JSON.stringify(GUIDE) : undefined)) throw new Error(`SegmentAttributes ${segments} reached Connect`)
    if ('ParticipantConfiguration' in input && JSON.stringify(input.ParticipantConfiguration) !== '{"ResponseMode":"COMPLETE"}') {
      throw new Error('streamed replies the profile did not turn on')
    }
    const attributes = (input.Attributes ?? {}) as Record<string, string>
    if (Object.keys(attributes).some((k) => !ALLOWED_ATTRIBUTES.includes(k))) throw new Error(`attributes ${Object.keys(attributes).join(',')} from a body alone`)
  }), { numRuns: runs(1000), ...seedOptions() })
  // The forging fields make most bodies refused; the property means little unless some start.
  t.ok(started > 20, `${started} chats started`)
})
