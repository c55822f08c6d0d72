/**
 * The simulator checks the StartChatContact fields the gateway sets from its profiles and tokens
 * as Connect documents them, with the real SDK on the wire, so tests of the gateway show what
 * Connect would receive and refuse.
 */
import t, { type Test } from 'tap'
import { ConnectClient, InvalidParameterException, ResourceNotFoundException, StartChatContactCommand, type StartChatContactCommandInput } from '@aws-sdk/client-connect'
import { startSimulator, type ConnectSimulator } from '../src/connect.js'

const BASE: StartChatContactCommandInput = { InstanceId: 'instance-1', ContactFlowId: 'flow-1', ParticipantDetails: { DisplayName: 'Ada' } }
const INTERACTIVE = 'application/vnd.amazonaws.connect.message.interactive'
const GUIDE = { 'connect:Subtype': { ValueString: 'connect:Guide' } }

async function setup (t: Test) {
  const sim = await startSimulator()
  const client = new ConnectClient({ endpoint: sim.url, region: 'us-east-1', credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' }, maxAttempts: 1 })
  t.teardown(async () => { client.destroy(); await sim.close() })
  const start = (input: Partial<StartChatContactCommandInput> | Record<string, unknown>) =>
    client.send(new StartChatContactCommand({ ...BASE, ...input } as StartChatContactCommandInput))
  return { sim, start }
}

/** A raw PUT, for shapes the SDK's types would not let a caller build. */
async function raw (sim: ConnectSimulator, body: Record<string, unknown>) {
  const res = await fetch(`${sim.url}/contact/chat`, {
    method: 'PUT',
    headers: {
      'content-type': 'application/json',
      authorization: `AWS4-HMAC-SHA256 Credential=AKIDTEST/20250101/us-east-1/connect/aws4_request, SignedHeaders=host, Signature=${'ab'.repeat(32)}`
    },
    body: JSON.stringify({ ...BASE, ...body })
  })
  return { status: res.status, type: res.headers.get('x-amzn-errortype'), body: await res.json() as { Message?: string } }
}

t.test('every field the gateway may set is accepted in its documented shape and recorded', async (t) => {
  const { sim, start } = await setup(t)
  const res = await start({
    CustomerId: 'cust-42',
    SegmentAttributes: { ...GUIDE, 'connect:CustomerAuthentication': { ValueString: 'AUTHENTICATED' }, 'connect:ContactExpiry': { ValueMap: { ExpiryDuration: { ValueInteger: 135 } } } },
    SupportedMessagingContentTypes: ['text/plain', INTERACTIVE, `${INTERACTIVE}.response`],
    DisconnectOnCustomerExit: ['AGENT'],
    ParticipantConfiguration: { ResponseMode: 'INCREMENTAL' }
  })
  t.ok(res.ContactId)
  t.match(sim.requests[0]!.input, { CustomerId: 'cust-42', DisconnectOnCustomerExit: ['AGENT'], ParticipantConfiguration: { ResponseMode: 'INCREMENTAL' } })
})

t.test('connect:Guide without both interactive content types -> InvalidParameterException', async (t) => {
  const { sim, start } = await setup(t)
  for (const types of [undefined, ['text/plain'], ['text/plain', INTERACTIVE]]) {
    const err = await start({ SegmentAttributes: GUIDE, ...(types ? { SupportedMessagingContentTypes: types } : {}) }).catch((e: unknown) => e)
    t.type(err, InvalidParameterException, JSON.stringify(types))
    t.match((err as Error).message, /connect:Guide/)
  }
  t.equal(sim.stats().created, 0)
})

t.test('malformed values -> 400 InvalidParameterException naming the field', async (t) => {
  const { sim } = await setup(t)
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ SegmentAttributes: { 'connect:Subtype': 'connect:Guide' } }, /SegmentAttributes\.connect:Subtype must be an object/],
    [{ SegmentAttributes: { 'connect:Subtype': { ValueString: 'a', ValueInteger: 1 } } }, /exactly one/],
    [{ SegmentAttributes: { 'connect:Subtype': { ValueString: '' } } }, /ValueString/],
    [{ SegmentAttributes: { k: { ValueInteger: 1.5 } } }, /ValueInteger must be an integer/],
    [{ SegmentAttributes: { k: { ValueList: [{ ValueString: 'ok' }, {}] } } }, /ValueList\[1\]/],
    [{ CustomerId: 'x'.repeat(129) }, /CustomerId/],
    [{ CustomerId: 7 }, /CustomerId must be a string/],
    [{ DisconnectOnCustomerExit: ['CUSTOMER'] }, /DisconnectOnCustomerExit/],
    [{ DisconnectOnCustomerExit: 'AGENT' }, /DisconnectOnCustomerExit/],
    [{ ParticipantConfiguration: { ResponseMode: 'STREAM' } }, /ResponseMode/],
    [{ RelatedContactId: '' }, /RelatedContactId/]
  ]
  for (const [body, message] of cases) {
    const res = await raw(sim, body)
    t.equal(res.status, 400, JSON.stringify(body).slice(0, 60))
    t.equal(res.type, 'InvalidParameterException')
    t.match(res.body.Message, message)
  }
  t.equal(sim.stats().created, 0)
})

t.test('RelatedContactId: an unknown contact -> ResourceNotFound; with PersistentChat -> refused; a known one copies its attributes', async (t) => {
  const { sim, start } = await setup(t)
  t.type(await start({ RelatedContactId: 'no-such-contact' }).catch((e: unknown) => e), ResourceNotFoundException)
  const earlier = await start({ Attributes: { topic: 'billing', tier: 'gold' } })
  sim.endChat(earlier.ContactId!)
  const both = await start({ RelatedContactId: earlier.ContactId!, PersistentChat: { RehydrationType: 'FROM_SEGMENT', SourceContactId: earlier.ContactId! } }).catch((e: unknown) => e)
  t.type(both, InvalidParameterException)
  t.match((both as Error).message, /PersistentChat and RelatedContactId/)
  const linked = await start({ RelatedContactId: earlier.ContactId!, Attributes: { tier: 'platinum' } })
  const contact = sim.contacts.get(linked.ContactId!)!
  t.same(contact.attributes, { topic: 'billing', tier: 'platinum' }, 'copied, with the new contact\'s own on top')
  t.equal(contact.relatedContactId, earlier.ContactId)
})
