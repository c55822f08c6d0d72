/**
 * The yardstick for refusals: Fastify with nothing registered, answering the chat-start route with
 * a constant. Refusing abuse (400, 403, 429) should cost about as little as this.
 */
import Fastify from 'fastify'

const app = Fastify({ logger: false })
const answer = { statusCode: 400, error: 'Bad Request', code: 'CONSTANT', message: 'constant' }
app.post('/chat/start', async (_request, reply) => reply.code(400).send(answer))
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
process.once('SIGTERM', () => { void app.close() })
