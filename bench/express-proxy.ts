/**
 * What a team writes by hand when it does not use this service: Express, the cors middleware, a
 * JSON body parser, and StartChatContact through one ConnectClient with the SDK's defaults, passing
 * Connect's answer back. No validation beyond what Connect does, no limits, no logging. Credentials,
 * region and endpoint come from the environment, as for the service.
 */
import { ConnectClient, StartChatContactCommand } from '@aws-sdk/client-connect'
import cors from 'cors'
import express from 'express'

const client = new ConnectClient({ region: process.env.AWS_REGION })
const app = express()
app.use(cors({ origin: (process.env.ALLOWED_ORIGINS ?? '').split(',') }))
app.use(express.json())

app.post('/chat/start', async (req, res) => {
  try {
    const out = await client.send(new StartChatContactCommand({
      InstanceId: process.env.CONNECT_INSTANCE_ID,
      ContactFlowId: process.env.CONNECT_CONTACT_FLOW_ID,
      ParticipantDetails: req.body.ParticipantDetails,
      Attributes: req.body.Attributes
    }))
    res.json({ data: { startChatResult: { ContactId: out.ContactId, ParticipantId: out.ParticipantId, ParticipantToken: out.ParticipantToken } } })
  } catch {
    res.status(502).json({ message: 'Could not start the chat' })
  }
})

const server = app.listen(Number(process.env.PORT), '127.0.0.1')
process.once('SIGTERM', () => { client.destroy(); server.close(); server.closeAllConnections() })
