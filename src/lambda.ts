// The Lambda function's entry (handler `index.handler` in the bundle, `lambda.handler` in dist/):
// API Gateway HTTP API, payload format 2.0. Settings come from the function's environment.
// Unlike server.ts: no listener, admin port, SIGHUP reload or SIGTERM drain. Lambda sends an
// environment no request while it shuts it down, and WIDGETS_FILE changes with a new deployment.
import { createHandler } from './lambda-handler.js'

export { createHandler }

export const handler = createHandler()

// Built while the environment initialises (ahead of traffic when Lambda initialises it early); a
// failure is reported there, and the first invocation builds it again.
await handler.ready().catch(() => {})
