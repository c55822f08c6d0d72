/**
 * The floor: a bare node:http relay that parses the JSON body and sends StartChatContact through
 * the same ConnectClient the service builds (same agent, retry strategy, timeouts), with no checks,
 * no logging, no schema. The SDK's SigV4 signing and middleware are most of a chat start's cost;
 * no gateway can be cheaper than this. Credentials, region and endpoint come from the environment.
 */
import { createServer } from 'node:http'
import { StartChatContactCommand } from '@aws-sdk/client-connect'
import { createConnectClient } from '../src/connect/client.js'

const client = createConnectClient({ region: process.env.AWS_REGION, maxAttempts: 3, attemptTimeoutMs: 3_000, maxSockets: 50 })
const target = { InstanceId: process.env.CONNECT_INSTANCE_ID ?? 'bench-instance', ContactFlowId: process.env.CONNECT_CONTACT_FLOW_ID ?? 'bench-flow' }

const server = createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    let body: { ParticipantDetails?: { DisplayName?: string }; Attributes?: Record<string, string> }
    try { body = JSON.parse(Buffer.concat(chunks).toString()) } catch { res.writeHead(400).end(); return }
    client.send(new StartChatContactCommand({ ...target, ParticipantDetails: { DisplayName: body.ParticipantDetails?.DisplayName ?? '' }, Attributes: body.Attributes }))
      .then((out) => {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ data: { startChatResult: { ContactId: out.ContactId, ParticipantId: out.ParticipantId, ParticipantToken: out.ParticipantToken } } }))
      }, () => { res.writeHead(502).end() })
  })
})
server.keepAliveTimeout = 72_000
server.listen(Number(process.env.PORT), '127.0.0.1')
process.once('SIGTERM', () => { client.destroy(); server.close(); server.closeAllConnections() })
