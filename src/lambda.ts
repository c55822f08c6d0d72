// The Lambda function's entry (handler `index.handler` in the bundle, `lambda.handler` in dist/):
// API Gateway HTTP API, payload format 2.0. Settings come from the function's environment.
import { createHandler } from './lambda-handler.js'

export { createHandler }

export const handler = createHandler()

// Built while the environment initialises (ahead of traffic when Lambda initialises it early); a
// failure is reported there, and the first invocation builds it again.
await handler.ready().catch(() => {})
