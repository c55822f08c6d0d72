/**
 * The Participant Service simulator over real HTTP and a real WebSocket, driven by the AWS SDK's own
 * `@aws-sdk/client-connectparticipant` (and `@aws-sdk/client-connect` to start the chats), the way
 * the StartChatContact simulator is tested against the Connect client.
 */
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { ConnectClient, DescribeContactCommand, StartChatContactCommand, type StartChatContactCommandInput } from '@aws-sdk/client-connect'
import {
  ConnectParticipantClient,
  ConnectParticipantServiceException,
  CreateParticipantConnectionCommand,
  DisconnectParticipantCommand,
  GetTranscriptCommand,
  SendEventCommand,
  SendMessageCommand,
  type GetTranscriptCommandInput
} from '@aws-sdk/client-connectparticipant'
import { startSimulator, type ConnectSimulator, type SimulatorOptions } from '../src/connect.js'
import { CONTENT_TYPE, type ChatItem } from '../src/participant.js'
import { fakeClock } from './fake-clock.js'

const CREDENTIALS = { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' }
const QUICK_AGENT = { joinDelayMs: 5, typingMs: 5 }

interface Setup { sim: ConnectSimulator; connect: ConnectClient; participant: ConnectParticipantClient; logs: string[] }

async function setup (t: Test, options: SimulatorOptions = {}): Promise<Setup> {
  const logs: string[] = []
  const sim = await startSimulator({ log: (line) => logs.push(line), participant: { agent: QUICK_AGENT }, ...options })
  const connect = new ConnectClient({ endpoint: sim.url, region: 'us-east-1', credentials: CREDENTIALS })
  // One attempt: a refusal must reach the test as it was sent, not after the SDK's retries.
  const participant = new ConnectParticipantClient({ endpoint: sim.url, region: 'us-east-1', credentials: CREDENTIALS, maxAttempts: 1 })
  t.teardown(async () => {
    connect.destroy()
    participant.destroy()
    await sim.close()
  })
  return { sim, connect, participant, logs }
}

function startChat (s: Setup, input: Partial<StartChatContactCommandInput> = {}) {
  return s.connect.send(new StartChatContactCommand({
    InstanceId: 'instance-1', ContactFlowId: 'flow-1', ParticipantDetails: { DisplayName: 'Ada Lovelace' }, ...input
  }))
}

async function connectParticipant (s: Setup, participantToken: string) {
  const out = await s.participant.send(new CreateParticipantConnectionCommand({
    ParticipantToken: participantToken, Type: ['WEBSOCKET', 'CONNECTION_CREDENTIALS'], ConnectParticipant: true
  }))
  return { url: out.Websocket?.Url ?? '', token: out.ConnectionCredentials?.ConnectionToken ?? '', out }
}

/** A chat WebSocket as chatjs drives it: subscribe to aws/chat, then collect the items pushed. */
class ChatSocket {
  readonly items: ChatItem[] = []
  readonly frames: Record<string, unknown>[] = []
  readonly ws: WebSocket
  closeCode: number | undefined
  private waiters: (() => void)[] = []

  constructor (url: string) {
    this.ws = new WebSocket(url)
    this.ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Record<string, unknown>
      this.frames.push(frame)
      if (frame.topic === 'aws/chat') this.items.push(JSON.parse(frame.content as string) as ChatItem)
      this.notify()
    })
    this.ws.on('close', (code) => {
      this.closeCode = code
      this.notify()
    })
    this.ws.on('error', () => this.notify())
  }

  static async open (t: Test, url: string): Promise<ChatSocket> {
    const socket = new ChatSocket(url)
    t.teardown(() => socket.ws.terminate())
    await new Promise<void>((resolve, reject) => {
      socket.ws.once('open', () => resolve())
      socket.ws.once('error', reject)
    })
    socket.send({ topic: 'aws/subscribe', content: { topics: ['aws/chat'] } })
    await socket.until(() => socket.frames.some((f) => f.topic === 'aws/subscribe'), 'the subscription answer')
    return socket
  }

  send (message: object): void {
    this.ws.send(JSON.stringify(message))
  }

  private notify (): void {
    for (const waiter of this.waiters.splice(0)) waiter()
  }

  /**
   * Waits for a condition on what arrived, checked on every frame, close and error; bounded so a
   * broken simulator fails instead of hanging.
   */
  async until (condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    if (condition()) return
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!condition()) {
          this.waiters.push(check)
          return
        }
        clearTimeout(deadline)
        resolve()
      }
      const deadline = setTimeout(() => {
        this.waiters = this.waiters.filter((waiter) => waiter !== check)
        reject(new Error(`timed out waiting for ${what}`))
      }, timeoutMs)
      this.waiters.push(check)
    })
  }

  find (contentType: string, role?: string): ChatItem | undefined {
    return this.items.find((i) => i.ContentType === contentType && (role === undefined || i.ParticipantRole === role))
  }
}

async function failure (promise: Promise<unknown>): Promise<ConnectParticipantServiceException> {
  try {
    await promise
  } catch (err) {
    if (err instanceof ConnectParticipantServiceException) return err
    throw err
  }
  throw new Error('expected the call to fail')
}

t.test('a whole chat: connect, subscribe, the agent greets by name, a message is echoed with typing first', async (t) => {
  const s = await setup(t)
  const chat = await startChat(s)
  const { url, token, out } = await connectParticipant(s, chat.ParticipantToken ?? '')
  t.match(url, /^ws:\/\/127\.0\.0\.1:\d+\//, 'a WebSocket URL chatjs accepts (ws only on 127.0.0.1)')
  t.ok(Date.parse(out.Websocket?.ConnectionExpiry ?? '') > Date.now(), 'ConnectionExpiry is an ISO time ahead')
  t.ok(Date.parse(out.ConnectionCredentials?.Expiry ?? '') > Date.now(), 'so is the ConnectionToken Expiry')

  const socket = await ChatSocket.open(t, url)
  t.same(socket.frames[0], { topic: 'aws/subscribe', content: { status: 'success', topics: ['aws/chat'] } })
  socket.send({ topic: 'aws/heartbeat' })
  socket.send({ topic: 'aws/ping' })
  await socket.until(() => socket.frames.some((f) => f.topic === 'aws/ping'), 'the ping answer')
  t.ok(socket.frames.some((f) => f.topic === 'aws/heartbeat'), 'heartbeat answered')
  t.match(socket.frames.find((f) => f.topic === 'aws/ping'), { statusCode: 200 }, 'deep heartbeat answered with statusCode 200')

  await socket.until(() => socket.items.some((i) => i.Type === 'MESSAGE' && i.ParticipantRole === 'AGENT'), 'the greeting')
  const joined = socket.find(CONTENT_TYPE.joined, 'AGENT')
  const greeting = socket.items.find((i) => i.Type === 'MESSAGE' && i.ParticipantRole === 'AGENT')
  t.ok(joined, 'the agent joined first')
  t.match(greeting?.Content, /Hi Ada Lovelace/, 'greets the customer by DisplayName')
  t.ok(socket.items.indexOf(socket.find(CONTENT_TYPE.typing, 'AGENT') as ChatItem) < socket.items.indexOf(greeting as ChatItem),
    'typing before the greeting')
  t.match(greeting, {
    Id: /^[0-9a-f-]{36}$/, Type: 'MESSAGE', ContentType: 'text/plain', ParticipantRole: 'AGENT', DisplayName: 'Sam (simulated agent)',
    ContactId: chat.ContactId, InitialContactId: chat.ContactId, ParticipantId: String
  })
  t.ok(!Number.isNaN(Date.parse(greeting?.AbsoluteTime ?? '')), 'AbsoluteTime is an ISO time')

  const sent = await s.participant.send(new SendMessageCommand({ ConnectionToken: token, ContentType: 'text/plain', Content: 'Where is my parcel?' }))
  t.match(sent, { Id: /^[0-9a-f-]{36}$/, AbsoluteTime: String })
  await socket.until(() => socket.items.some((i) => i.Content === 'You said: Where is my parcel?'), 'the echo')
  const mine = socket.items.find((i) => i.Id === sent.Id)
  t.match(mine, { ParticipantRole: 'CUSTOMER', DisplayName: 'Ada Lovelace', ParticipantId: chat.ParticipantId, Content: 'Where is my parcel?' },
    'the customer\'s own message comes back on the socket too')
  t.equal(socket.items.find((i) => i.Content === 'You said: Where is my parcel?')?.ContentType, 'text/plain', 'plain text answered as plain text')
  const typings = socket.items.filter((i) => i.ContentType === CONTENT_TYPE.typing)
  t.equal(typings.length, 2, 'typing shown before each answer')

  await s.participant.send(new SendMessageCommand({ ConnectionToken: token, ContentType: 'text/markdown', Content: 'It is **urgent**' }))
  await socket.until(() => socket.items.some((i) => i.Content === 'You said: It is **urgent**'), 'the markdown echo')
  t.equal(socket.items.find((i) => i.Content === 'You said: It is **urgent**')?.ContentType, 'text/markdown', 'markdown answered as markdown')
  await s.participant.send(new SendMessageCommand({ ConnectionToken: token, ContentType: 'text/markdown', Content: 'help' }))
  await socket.until(() => socket.items.some((i) => /understand \*\*help\*\* and \*\*bye\*\*/.test(i.Content ?? '')), 'the help, formatted')

  const logged = s.logs.join('\n')
  t.notMatch(logged, /parcel|Ada|Lovelace/, 'no message content or name in the log')
  t.notOk(logged.includes(token) || logged.includes(chat.ParticipantToken ?? '-'), 'no token in the log')
})

t.test('InitialMessage: in the transcript as the customer\'s, and answered after the greeting', async (t) => {
  const s = await setup(t)
  const chat = await startChat(s, { InitialMessage: { ContentType: 'text/plain', Content: 'help' } })
  const { url, token } = await connectParticipant(s, chat.ParticipantToken ?? '')
  const socket = await ChatSocket.open(t, url)
  await socket.until(() => socket.items.filter((i) => i.Type === 'MESSAGE' && i.ParticipantRole === 'AGENT').length === 2, 'two answers')
  const answers = socket.items.filter((i) => i.Type === 'MESSAGE' && i.ParticipantRole === 'AGENT').map((i) => i.Content)
  t.match(answers, [/^Hi Ada/, /understand "help" and "bye"/])
  const transcript = await s.participant.send(new GetTranscriptCommand({ ConnectionToken: token, SortOrder: 'ASCENDING' }))
  t.match(transcript.Transcript?.[0], { ContentType: CONTENT_TYPE.joined, ParticipantRole: 'CUSTOMER' })
  t.match(transcript.Transcript?.[1], { Type: 'MESSAGE', Content: 'help', ParticipantRole: 'CUSTOMER' })
})

t.test('a participant token opens only its own chat, and only while it is active', async (t) => {
  const s = await setup(t, { participant: { agent: false } })
  const first = await startChat(s)
  const second = await startChat(s)
  const a = await connectParticipant(s, first.ParticipantToken ?? '')
  const b = await connectParticipant(s, second.ParticipantToken ?? '')
  const sentA = await s.participant.send(new SendMessageCommand({ ConnectionToken: a.token, ContentType: 'text/plain', Content: 'for chat one' }))
  const transcriptB = await s.participant.send(new GetTranscriptCommand({ ConnectionToken: b.token }))
  t.notOk(transcriptB.Transcript?.some((i) => i.Id === sentA.Id), 'chat two never sees chat one\'s message')
  t.equal(transcriptB.InitialContactId, second.ContactId)

  for (const [what, call] of [
    ['unknown participant token', s.participant.send(new CreateParticipantConnectionCommand({ ParticipantToken: 'nope', Type: ['CONNECTION_CREDENTIALS'] }))],
    ['participant token used as a connection token', s.participant.send(new GetTranscriptCommand({ ConnectionToken: first.ParticipantToken ?? '' }))],
    ['connection token used as a participant token', s.participant.send(new CreateParticipantConnectionCommand({ ParticipantToken: a.token, Type: ['WEBSOCKET'] }))],
    ['unknown connection token', s.participant.send(new SendMessageCommand({ ConnectionToken: 'nope', ContentType: 'text/plain', Content: 'x' }))]
  ] as const) {
    const err = await failure(call)
    t.equal(err.name, 'AccessDeniedException', what)
    t.equal(err.$metadata.httpStatusCode, 403)
    t.notMatch(err.message, /nope/, 'the refusal does not echo the token')
  }

  s.sim.endChat(first.ContactId ?? '')
  for (const call of [
    s.participant.send(new CreateParticipantConnectionCommand({ ParticipantToken: first.ParticipantToken ?? '', Type: ['WEBSOCKET'] })),
    s.participant.send(new SendMessageCommand({ ConnectionToken: a.token, ContentType: 'text/plain', Content: 'too late' })),
    s.participant.send(new GetTranscriptCommand({ ConnectionToken: a.token })),
    s.participant.send(new DisconnectParticipantCommand({ ConnectionToken: a.token }))
  ]) {
    t.equal((await failure(call)).name, 'AccessDeniedException', 'an ended chat refuses its tokens')
  }
  const refused = new ChatSocket(a.url)
  await refused.until(() => refused.closeCode !== undefined, 'the refused upgrade')
  t.equal(refused.frames.length, 0, 'the WebSocket URL of an ended chat is refused')
  t.ok(await s.participant.send(new GetTranscriptCommand({ ConnectionToken: b.token })), 'the other chat goes on')
})

t.test('ValidationException for what the API documents as invalid', async (t) => {
  const s = await setup(t, { participant: { agent: false } })
  const chat = await startChat(s)
  const { token } = await connectParticipant(s, chat.ParticipantToken ?? '')
  const cases: [string, Promise<unknown>][] = [
    ['no Type and no ConnectParticipant', s.participant.send(new CreateParticipantConnectionCommand({ ParticipantToken: chat.ParticipantToken ?? '' }))],
    ['unknown connection Type', s.participant.send(new CreateParticipantConnectionCommand({ ParticipantToken: chat.ParticipantToken ?? '', Type: ['CARRIER_PIGEON' as 'WEBSOCKET'] }))],
    ['unknown message ContentType', s.participant.send(new SendMessageCommand({ ConnectionToken: token, ContentType: 'image/png', Content: 'x' }))],
    ['empty Content', s.participant.send(new SendMessageCommand({ ConnectionToken: token, ContentType: 'text/plain', Content: '' }))],
    ['text over 1024 characters', s.participant.send(new SendMessageCommand({ ConnectionToken: token, ContentType: 'text/plain', Content: 'x'.repeat(1025) }))],
    ['unknown event ContentType', s.participant.send(new SendEventCommand({ ConnectionToken: token, ContentType: 'application/vnd.amazonaws.connect.event.dance' }))],
    ['read receipt without messageId', s.participant.send(new SendEventCommand({ ConnectionToken: token, ContentType: CONTENT_TYPE.read, Content: '{}' }))],
    ['MaxResults over 100', s.participant.send(new GetTranscriptCommand({ ConnectionToken: token, MaxResults: 101 }))],
    ['unknown ScanDirection', s.participant.send(new GetTranscriptCommand({ ConnectionToken: token, ScanDirection: 'SIDEWAYS' as 'FORWARD' }))],
    ['unknown SortOrder', s.participant.send(new GetTranscriptCommand({ ConnectionToken: token, SortOrder: 'RANDOM' as 'ASCENDING' }))],
    ['two StartPositions', s.participant.send(new GetTranscriptCommand({ ConnectionToken: token, StartPosition: { MostRecent: 1, Id: 'x' } }))],
    ['StartPosition.Id not in the chat', s.participant.send(new GetTranscriptCommand({ ConnectionToken: token, StartPosition: { Id: 'x' } }))],
    ['forged NextToken', s.participant.send(new GetTranscriptCommand({ ConnectionToken: token, NextToken: 'forged' }))],
    ['ContactId of another chat', s.participant.send(new GetTranscriptCommand({ ConnectionToken: token, ContactId: 'someone-else' }))]
  ]
  for (const [what, call] of cases) {
    const err = await failure(call)
    t.equal(err.name, 'ValidationException', what)
    t.equal(err.$metadata.httpStatusCode, 400, what)
  }
})

t.test('GetTranscript pages as documented: ScanDirection, SortOrder, MaxResults, NextToken, StartPosition', async (t) => {
  const s = await setup(t, { participant: { agent: false } })
  const chat = await startChat(s)
  const { token } = await connectParticipant(s, chat.ParticipantToken ?? '')
  const ids: string[] = []
  for (let i = 1; i <= 7; i++) {
    const sent = await s.participant.send(new SendMessageCommand({ ConnectionToken: token, ContentType: 'text/plain', Content: `m${i}` }))
    ids.push(sent.Id ?? '')
  }
  // Oldest first: the customer's joined event, then m1..m7.
  const all = s.sim.participant?.transcript(chat.ContactId ?? '') ?? []
  t.equal(all.length, 8)
  const get = (input: Partial<GetTranscriptCommandInput>) => s.participant.send(new GetTranscriptCommand({ ConnectionToken: token, ...input }))
  const contents = (items: { Content?: string }[] | undefined) => (items ?? []).map((i) => i.Content ?? 'joined')

  const first = await get({})
  t.same(contents(first.Transcript), ['m7', 'm6', 'm5', 'm4', 'm3', 'm2', 'm1', 'joined'], 'default: BACKWARD from the newest, DESCENDING, up to 10')
  t.equal(first.NextToken, undefined, 'no NextToken when nothing is left')

  const pages: string[][] = []
  let nextToken: string | undefined
  for (let n = 0; n < 10; n++) {
    const page = await get({ MaxResults: 3, SortOrder: 'ASCENDING', NextToken: nextToken })
    pages.push(contents(page.Transcript))
    nextToken = page.NextToken
    if (!nextToken) break
  }
  t.same(pages, [['m5', 'm6', 'm7'], ['m2', 'm3', 'm4'], ['joined', 'm1']], 'BACKWARD pages walk to the oldest, each sorted ASCENDING')

  const forward = await get({ ScanDirection: 'FORWARD', MaxResults: 3 })
  t.same(contents(forward.Transcript), ['m2', 'm1', 'joined'], 'FORWARD from the oldest, DESCENDING by default')
  const forwardNext = await get({ ScanDirection: 'FORWARD', MaxResults: 3, NextToken: forward.NextToken, SortOrder: 'ASCENDING' })
  t.same(contents(forwardNext.Transcript), ['m3', 'm4', 'm5'])
  const wrongWay = await failure(get({ ScanDirection: 'BACKWARD', NextToken: forward.NextToken }))
  t.equal(wrongWay.name, 'ValidationException', 'a NextToken continues only its own direction')

  const recent = await get({ StartPosition: { MostRecent: 2 }, SortOrder: 'ASCENDING' })
  t.same(contents(recent.Transcript), ['m6', 'm7'], 'StartPosition.MostRecent scans FORWARD from the n-th newest')
  const fromId = await get({ StartPosition: { Id: ids[4] }, SortOrder: 'ASCENDING', MaxResults: 2 })
  t.same(contents(fromId.Transcript), ['m5', 'm6'], 'StartPosition.Id starts at that item')
  const beforeId = await get({ StartPosition: { Id: ids[4] }, ScanDirection: 'BACKWARD', SortOrder: 'ASCENDING', MaxResults: 2 })
  t.same(contents(beforeId.Transcript), ['m4', 'm5'], 'and BACKWARD from it')
  const fromTime = await get({ StartPosition: { AbsoluteTime: all[7]?.AbsoluteTime }, SortOrder: 'ASCENDING' })
  t.same(contents(fromTime.Transcript).at(-1), 'm7', 'StartPosition.AbsoluteTime')
  const none = await get({ MaxResults: 0 })
  t.same(none.Transcript, [], 'MaxResults 0 returns nothing')
})

t.test('persistent chat: ENTIRE_PAST_SESSION sees the past session through GetTranscript', async (t) => {
  const s = await setup(t, { participant: { agent: false } })
  const past = await startChat(s, { InitialMessage: { ContentType: 'text/plain', Content: 'first visit' } })
  const pastConnection = await connectParticipant(s, past.ParticipantToken ?? '')
  await s.participant.send(new SendMessageCommand({ ConnectionToken: pastConnection.token, ContentType: 'text/plain', Content: 'order 42' }))
  s.sim.participant?.agentSays(past.ContactId ?? '', 'It ships tomorrow')
  await s.participant.send(new DisconnectParticipantCommand({ ConnectionToken: pastConnection.token }))

  const resumed = await startChat(s, { PersistentChat: { RehydrationType: 'ENTIRE_PAST_SESSION', SourceContactId: past.ContactId } })
  t.equal(resumed.ContinuedFromContactId, past.ContactId)
  const { token } = await connectParticipant(s, resumed.ParticipantToken ?? '')
  await s.participant.send(new SendMessageCommand({ ConnectionToken: token, ContentType: 'text/plain', Content: 'back again' }))
  const transcript = await s.participant.send(new GetTranscriptCommand({ ConnectionToken: token, SortOrder: 'ASCENDING', MaxResults: 100 }))
  t.equal(transcript.InitialContactId, past.ContactId, 'the session\'s initial contact')
  const messages = (transcript.Transcript ?? []).filter((i) => i.Type === 'MESSAGE')
  t.same(messages.map((i) => [i.Content, i.ContactId]), [
    ['first visit', past.ContactId], ['order 42', past.ContactId], ['It ships tomorrow', past.ContactId], ['back again', resumed.ContactId]
  ], 'the old chat first, then the new, each item naming its contact')
  t.ok(transcript.Transcript?.some((i) => i.ContentType === CONTENT_TYPE.ended && i.ContactId === past.ContactId), 'the past chat\'s end is in it')
  const onlyPast = await s.participant.send(new GetTranscriptCommand({ ConnectionToken: token, ContactId: past.ContactId, MaxResults: 100 }))
  t.ok(onlyPast.Transcript?.every((i) => i.ContactId === past.ContactId), 'ContactId narrows to one contact of the chain')

  const fresh = await startChat(s)
  const freshConnection = await connectParticipant(s, fresh.ParticipantToken ?? '')
  const freshTranscript = await s.participant.send(new GetTranscriptCommand({ ConnectionToken: freshConnection.token, MaxResults: 100 }))
  t.notOk(freshTranscript.Transcript?.some((i) => i.ContactId === past.ContactId), 'an unrelated chat sees none of it')
})

t.test('the chat ends from either side, with Connect\'s chat-ended event', async (t) => {
  const s = await setup(t)
  const customerSide = await startChat(s)
  const c = await connectParticipant(s, customerSide.ParticipantToken ?? '')
  const cs = await ChatSocket.open(t, c.url)
  await cs.until(() => cs.find(CONTENT_TYPE.joined, 'AGENT') !== undefined, 'the agent')
  await s.participant.send(new DisconnectParticipantCommand({ ConnectionToken: c.token }))
  await cs.until(() => cs.find(CONTENT_TYPE.ended) !== undefined, 'chat ended')
  t.ok(cs.find(CONTENT_TYPE.left, 'CUSTOMER'), 'the customer left')
  t.match(cs.find(CONTENT_TYPE.ended), { Type: 'EVENT', ContactId: customerSide.ContactId, InitialContactId: customerSide.ContactId })
  t.equal(s.sim.stats().active, 0, 'the contact ended in the StartChatContact simulator too')

  const agentSide = await startChat(s)
  const a = await connectParticipant(s, agentSide.ParticipantToken ?? '')
  const as = await ChatSocket.open(t, a.url)
  await s.participant.send(new SendMessageCommand({ ConnectionToken: a.token, ContentType: 'text/plain', Content: 'ok, bye!' }))
  await as.until(() => as.find(CONTENT_TYPE.ended) !== undefined, 'chat ended by the agent')
  t.match(as.items.filter((i) => i.Type === 'MESSAGE' && i.ParticipantRole === 'AGENT').at(-1)?.Content, /Goodbye/)
  t.ok(as.find(CONTENT_TYPE.left, 'AGENT'), 'the agent left')
  t.equal((await failure(s.participant.send(new SendMessageCommand({ ConnectionToken: a.token, ContentType: 'text/plain', Content: 'hello?' })))).name,
    'AccessDeniedException')

  const timedOut = await startChat(s)
  s.sim.endChat(timedOut.ContactId ?? '')
  t.throws(() => s.sim.participant?.agentSays(timedOut.ContactId ?? '', 'hi'), /has ended/, 'the agent cannot write into an ended chat')
})

t.test('the agent keeps the simulator\'s time: it joins joinDelayMs after the customer connects and types typingMs before answering', async (t) => {
  // Minutes, not the real agent's moments: with any wall-clock wait left, the bounded waits below would time out.
  const time = fakeClock()
  const s = await setup(t, { clock: time.clock, participant: { agent: { joinDelayMs: 10 * 60_000, typingMs: 15 * 60_000 } } })
  const chat = await startChat(s)
  const { url } = await connectParticipant(s, chat.ParticipantToken ?? '')
  const socket = await ChatSocket.open(t, url)
  const greeting = () => socket.items.find((i) => i.Type === 'MESSAGE' && i.ParticipantRole === 'AGENT')
  await time.tick(10 * 60_000 - 1)
  t.notOk(socket.find(CONTENT_TYPE.joined, 'AGENT'), 'not joined 1 ms before joinDelayMs')
  await time.tick(1)
  await socket.until(() => socket.find(CONTENT_TYPE.typing, 'AGENT') !== undefined, 'the agent joining, then typing')
  await time.tick(15 * 60_000 - 1)
  t.notOk(greeting(), 'still typing 1 ms before typingMs')
  await time.tick(1)
  await socket.until(() => greeting() !== undefined, 'the greeting')
  t.match(greeting()?.Content, /^Hi Ada Lovelace/)
})

t.test('the contact\'s duration running out pushes chat-ended without any call', async (t) => {
  const time = fakeClock()
  const s = await setup(t, { chatDurationMs: 3_000, participant: { agent: false }, clock: time.clock })
  const chat = await startChat(s)
  const { url } = await connectParticipant(s, chat.ParticipantToken ?? '')
  const socket = await ChatSocket.open(t, url)
  t.notOk(socket.find(CONTENT_TYPE.ended), 'live until its time')
  await time.tick(3_001)
  await socket.until(() => socket.find(CONTENT_TYPE.ended) !== undefined, 'the end of the chat')
  t.pass('chat ended when its duration passed')
})

t.test('a chat of ChatDurationInMinutes 60 ends when the clock passes the hour: DescribeContact says so, chat-ended is pushed, participant calls are refused', async (t) => {
  const time = fakeClock()
  const s = await setup(t, { participant: { agent: false }, clock: time.clock })
  const chat = await startChat(s, { ChatDurationInMinutes: 60 })
  const describe = async () => (await s.connect.send(new DescribeContactCommand({ InstanceId: 'instance-1', ContactId: chat.ContactId }))).Contact
  const { url, token, out } = await connectParticipant(s, chat.ParticipantToken ?? '')
  t.equal(out.Websocket?.ConnectionExpiry, new Date(time.clock.now() + 100_000).toISOString(), 'the WebSocket URL expires 100 s from the clock\'s now')
  t.equal(out.ConnectionCredentials?.Expiry, new Date(time.clock.now() + 24 * 3_600_000).toISOString(), 'the ConnectionToken a day from it')
  const socket = await ChatSocket.open(t, url)
  const send = (content: string) => s.participant.send(new SendMessageCommand({ ConnectionToken: token, ContentType: 'text/plain', Content: content }))

  await time.tick(60 * 60_000 - 1)
  t.equal((await describe())?.DisconnectTimestamp, undefined, 'active 1 ms before the hour')
  t.ok((await send('still here')).Id, 'and the customer can write')
  t.equal(s.sim.stats().active, 1)

  await time.tick(1)
  const ended = await describe()
  t.equal((ended?.DisconnectTimestamp?.getTime() ?? 0) - (ended?.InitiationTimestamp?.getTime() ?? 0), 60 * 60_000,
    'DescribeContact: disconnected an hour after it started')
  t.equal(s.sim.stats().active, 0, 'no longer counted as active')
  await time.tick(1)
  await socket.until(() => socket.find(CONTENT_TYPE.ended) !== undefined, 'chat-ended, pushed without any call')
  t.equal((await failure(send('hello?'))).name, 'AccessDeniedException', 'SendMessage refused, as Connect refuses an ended chat\'s token')
  t.equal((await failure(s.participant.send(new CreateParticipantConnectionCommand({ ParticipantToken: chat.ParticipantToken, Type: ['WEBSOCKET'] })))).name,
    'AccessDeniedException', 'so is a new connection')
})

t.test('SendEvent: typing is relayed, receipts land on the message, ClientToken makes SendMessage idempotent', async (t) => {
  const s = await setup(t, { participant: { agent: false } })
  const chat = await startChat(s)
  const { token } = await connectParticipant(s, chat.ParticipantToken ?? '')
  const typing = await s.participant.send(new SendEventCommand({ ConnectionToken: token, ContentType: CONTENT_TYPE.typing }))
  t.match(typing, { Id: String, AbsoluteTime: String })
  t.equal(s.sim.participant?.stats().customerTyping, 1)
  t.notOk(s.sim.participant?.transcript(chat.ContactId ?? '').some((i) => i.ContentType === CONTENT_TYPE.typing), 'typing is not kept')

  s.sim.participant?.agentSays(chat.ContactId ?? '', 'Anything else?')
  const agentMessage = s.sim.participant?.transcript(chat.ContactId ?? '').at(-1)
  await s.participant.send(new SendEventCommand({ ConnectionToken: token, ContentType: CONTENT_TYPE.delivered, Content: JSON.stringify({ messageId: agentMessage?.Id }) }))
  await s.participant.send(new SendEventCommand({ ConnectionToken: token, ContentType: CONTENT_TYPE.read, Content: JSON.stringify({ messageId: agentMessage?.Id }) }))
  const transcript = await s.participant.send(new GetTranscriptCommand({ ConnectionToken: token }))
  const receipt = transcript.Transcript?.find((i) => i.Id === agentMessage?.Id)?.MessageMetadata?.Receipts?.[0]
  t.equal(receipt?.RecipientParticipantId, chat.ParticipantId)
  t.ok(receipt?.ReadTimestamp && receipt.DeliveredTimestamp, 'read and delivered')

  const once = await s.participant.send(new SendMessageCommand({ ConnectionToken: token, ContentType: 'text/plain', Content: 'once', ClientToken: 'k1' }))
  const again = await s.participant.send(new SendMessageCommand({ ConnectionToken: token, ContentType: 'text/plain', Content: 'once', ClientToken: 'k1' }))
  t.equal(again.Id, once.Id, 'the retry returns the first message')
  t.equal(s.sim.participant?.transcript(chat.ContactId ?? '').filter((i) => i.Content === 'once').length, 1, 'and adds nothing')
})

t.test('faults: drop the WebSocket, reject the next message, expire the connection token', async (t) => {
  const s = await setup(t, { participant: { agent: false } })
  const chat = await startChat(s)
  const contactId = chat.ContactId ?? ''
  const first = await connectParticipant(s, chat.ParticipantToken ?? '')
  const socket = await ChatSocket.open(t, first.url)

  s.sim.participant?.fault({ type: 'dropWebSocket', contactId })
  await socket.until(() => socket.closeCode !== undefined, 'the drop')
  t.equal(socket.closeCode, 1006, 'closed without a handshake, like a network failure')
  t.equal(s.sim.participant?.openSockets(contactId), 0)
  s.sim.participant?.agentSays(contactId, 'said while you were away')
  // What chatjs does next: a new connection with the same ParticipantToken, then GetTranscript.
  const second = await connectParticipant(s, chat.ParticipantToken ?? '')
  const again = await ChatSocket.open(t, second.url)
  t.equal(s.sim.participant?.stats().websocketsOpened, 2, 'reconnected')
  const caughtUp = await s.participant.send(new GetTranscriptCommand({ ConnectionToken: second.token }))
  t.ok(caughtUp.Transcript?.some((i) => i.Content === 'said while you were away'), 'nothing said meanwhile is lost')
  s.sim.participant?.agentSays(contactId, 'and now live')
  await again.until(() => again.items.some((i) => i.Content === 'and now live'), 'the live message on the new socket')

  s.sim.participant?.fault({ type: 'rejectMessage', errorType: 'ThrottlingException' })
  const rejected = await failure(s.participant.send(new SendMessageCommand({ ConnectionToken: second.token, ContentType: 'text/plain', Content: 'one' })))
  t.equal(rejected.name, 'ThrottlingException')
  t.equal(rejected.$metadata.httpStatusCode, 429)
  t.ok(await s.participant.send(new SendMessageCommand({ ConnectionToken: second.token, ContentType: 'text/plain', Content: 'two' })), 'only the next one')
  t.notOk(s.sim.participant?.transcript(contactId).some((i) => i.Content === 'one'), 'the rejected message is not in the chat')

  s.sim.participant?.fault({ type: 'expireConnectionToken', contactId })
  const expired = await failure(s.participant.send(new GetTranscriptCommand({ ConnectionToken: second.token })))
  t.equal(expired.name, 'AccessDeniedException', 'an expired connection token is refused')
  const third = await connectParticipant(s, chat.ParticipantToken ?? '')
  t.ok(await s.participant.send(new GetTranscriptCommand({ ConnectionToken: third.token })), 'a new connection brings a fresh token')
})

t.test('control API over HTTP: participant faults, the agent\'s voice and stats', async (t) => {
  const s = await setup(t, { controlApi: true, participant: { agent: false } })
  const chat = await startChat(s)
  const { url, token } = await connectParticipant(s, chat.ParticipantToken ?? '')
  const socket = await ChatSocket.open(t, url)
  const post = (path: string, body: unknown) => fetch(`${s.sim.url}/__sim/participant/${path}`, { method: 'POST', body: JSON.stringify(body) })

  t.equal((await post('say', { contactId: chat.ContactId, text: 'from the control API' })).status, 200)
  await socket.until(() => socket.items.some((i) => i.Content === 'from the control API'), 'the message')
  t.equal(socket.items.find((i) => i.Content === 'from the control API')?.ContentType, 'text/plain')
  t.equal((await post('say', { contactId: chat.ContactId, text: '**in markdown**', contentType: 'text/markdown' })).status, 200)
  await socket.until(() => socket.items.some((i) => i.Content === '**in markdown**' && i.ContentType === 'text/markdown'), 'the markdown message')
  t.equal((await post('fault', { type: 'rejectMessage', errorType: 'InternalServerException' })).status, 200)
  t.equal((await failure(s.participant.send(new SendMessageCommand({ ConnectionToken: token, ContentType: 'text/plain', Content: 'x' })))).name,
    'InternalServerException')
  t.equal((await post('fault', { type: 'launchRockets' })).status, 400, 'unknown fault refused')
  t.equal((await post('fault', { type: 'rejectMessage', count: 0 })).status, 400)
  t.equal((await post('say', { contactId: chat.ContactId })).status, 400, 'say needs text')
  t.equal((await post('say', { contactId: 'unknown', text: 'x' })).status, 400, 'unknown contact')
  const stats = await (await fetch(`${s.sim.url}/__sim/participant/stats`)).json() as Record<string, number>
  t.match(stats, { connectionsCreated: 1, websocketsOpen: 1, faulted: 1 })
  t.equal((await post('fault', { type: 'dropWebSocket' })).status, 200)
  await socket.until(() => socket.closeCode !== undefined, 'the drop')
  t.equal((await post('end', { contactId: chat.ContactId })).status, 200)
  t.equal(s.sim.stats().active, 0, 'ended by the agent')
  t.equal((await fetch(`${s.sim.url}/__sim/participant/fault`, { method: 'POST', body: 'not json' })).status, 400)
})

t.test('raw HTTP: CORS for browsers, unknown operations, malformed bodies', async (t) => {
  const s = await setup(t, { participant: { agent: false } })
  const preflight = await fetch(`${s.sim.url}/participant/message`, {
    method: 'OPTIONS',
    headers: { origin: 'http://localhost:3001', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-amz-bearer,amz-sdk-request' }
  })
  t.equal(preflight.status, 204)
  t.equal(preflight.headers.get('access-control-allow-origin'), 'http://localhost:3001')
  t.match(preflight.headers.get('access-control-allow-headers'), /x-amz-bearer/)

  const unknown = await fetch(`${s.sim.url}/participant/teleport`, { method: 'POST', headers: { origin: 'http://localhost:3001' } })
  t.equal(unknown.status, 404)
  t.equal(unknown.headers.get('access-control-expose-headers')?.includes('x-amzn-errortype'), true, 'error type readable cross-origin')
  const chat = await startChat(s)
  const malformed = await fetch(`${s.sim.url}/participant/connection`, { method: 'POST', headers: { 'x-amz-bearer': chat.ParticipantToken ?? '' }, body: '{' })
  t.equal(malformed.status, 400)
  t.equal(malformed.headers.get('x-amzn-errortype'), 'ValidationException')
  const list = await fetch(`${s.sim.url}/participant/connection`, { method: 'POST', headers: { 'x-amz-bearer': chat.ParticipantToken ?? '' }, body: '[]' })
  t.equal(list.status, 400)
  const noBearer = await fetch(`${s.sim.url}/participant/transcript`, { method: 'POST', body: '{}' })
  t.equal(noBearer.headers.get('x-amzn-errortype'), 'AccessDeniedException')

  const { url } = await connectParticipant(s, chat.ParticipantToken ?? '')
  const socket = await ChatSocket.open(t, url)
  socket.send({ topic: 'aws/subscribe', content: { topics: ['aws/elsewhere'] } })
  socket.ws.send('not json')
  socket.send({ topic: 'aws/chat', content: 'clients do not publish' })
  await socket.until(() => socket.frames.filter((f) => f.topic === 'aws/subscribe').length === 2, 'the second subscription answer')
  t.match(socket.frames.at(-1), { content: { status: 'failure', topics: ['aws/elsewhere'] } }, 'unknown topics refused')
  const bad = new ChatSocket(url.replace(/token=[^&]+/, 'token=forged'))
  await bad.until(() => bad.closeCode !== undefined, 'the refused upgrade')
  t.pass('a forged WebSocket token is refused')
})

t.test('participant: false leaves only StartChatContact', async (t) => {
  const s = await setup(t, { participant: false })
  t.equal(s.sim.participant, undefined)
  const res = await fetch(`${s.sim.url}/participant/connection`, { method: 'POST', body: '{}' })
  t.equal(res.headers.get('x-amzn-errortype'), 'UnknownOperationException')
})
