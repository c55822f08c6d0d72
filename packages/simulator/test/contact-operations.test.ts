import t, { type Test } from 'tap'
import { ConnectClient, ContactNotFoundException, DescribeContactCommand, ResourceNotFoundException, StartChatContactCommand, StopContactCommand } from '@aws-sdk/client-connect'
import { startSimulator, type SimulatorOptions } from '../src/connect.js'
import { fakeClock } from './fake-clock.js'

async function setup (t: Test, options: SimulatorOptions = {}) {
  const sim = await startSimulator(options)
  const client = new ConnectClient({ region: 'us-east-1', endpoint: sim.url, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'x' }, maxAttempts: 1 })
  t.teardown(async () => { client.destroy(); await sim.close() })
  const start = async (minutes?: number) => (await client.send(new StartChatContactCommand({
    InstanceId: 'i-1', ContactFlowId: 'f-1', ParticipantDetails: { DisplayName: 'Ann' }, ...(minutes ? { ChatDurationInMinutes: minutes } : {})
  }))).ContactId!
  const describe = async (id: string) => (await client.send(new DescribeContactCommand({ InstanceId: 'i-1', ContactId: id }))).Contact
  return { sim, client, start, describe }
}

t.test('DescribeContact: no DisconnectTimestamp while live; one after StopContact, and StopContact again is ContactNotFound', async (t) => {
  const { sim, client, start, describe } = await setup(t)
  const id = await start(90)
  const live = await describe(id)
  t.equal(live?.Id, id)
  t.equal(live?.Channel, 'CHAT')
  t.equal(live?.DisconnectTimestamp, undefined)
  await client.send(new StopContactCommand({ InstanceId: 'i-1', ContactId: id }))
  t.ok((await describe(id))?.DisconnectTimestamp instanceof Date, 'ended by StopContact')
  await t.rejects(client.send(new StopContactCommand({ InstanceId: 'i-1', ContactId: id })), ContactNotFoundException)
  t.match(sim.stats(), { described: 2, stopped: 2, active: 0 })
})

t.test('a chat ended by the other side, or by its duration, shows its DisconnectTimestamp', async (t) => {
  const { sim, start, describe } = await setup(t)
  const byAgent = await start()
  sim.endChat(byAgent)
  t.ok((await describe(byAgent))?.DisconnectTimestamp)
})

t.test('a chat of ChatDurationInMinutes 60 is live for the hour of the simulator\'s clock, then ended', async (t) => {
  const time = fakeClock()
  const { sim, client, start, describe } = await setup(t, { clock: time.clock })
  const id = await start(60)
  await time.tick(60 * 60_000 - 1)
  t.equal((await describe(id))?.DisconnectTimestamp, undefined, 'live 1 ms before the hour')
  await time.tick(1)
  const ended = await describe(id)
  t.equal(ended?.DisconnectTimestamp?.getTime(), (ended?.InitiationTimestamp?.getTime() ?? 0) + 60 * 60_000, 'ended when the hour ran out')
  await t.rejects(client.send(new StopContactCommand({ InstanceId: 'i-1', ContactId: id })), ContactNotFoundException, 'StopContact: no longer active')
  t.equal(sim.stats().active, 0)
})

t.test('unknown contacts: ResourceNotFound for DescribeContact, ContactNotFound for StopContact', async (t) => {
  const { client, describe } = await setup(t)
  await t.rejects(describe('nope'), ResourceNotFoundException)
  await t.rejects(client.send(new StopContactCommand({ InstanceId: 'i-1', ContactId: 'nope' })), ContactNotFoundException)
})
