import { App, type Stack } from 'aws-cdk-lib'
import { parseConfig, parseLambdaConfig, readContext, readMode } from './config.js'
import { GatewayStack } from './gateway-stack.js'
import { LambdaGatewayStack } from './lambda-stack.js'

export const STACK_NAME = 'ConnectChatGateway'
/** Its own default name: switching modes under one name would replace the whole deployment in one update. */
export const LAMBDA_STACK_NAME = 'ConnectChatGatewayServerless'

/**
 * The stack from the app's context values: Fargate, or with `-c mode=lambda` the serverless one.
 * Only the region is given to the environment: with an account too, CDK would look availability
 * zones up in that account, which needs credentials.
 */
export function addGatewayStack (app: App): Stack {
  const raw = readContext((key) => app.node.tryGetContext(key))
  if (readMode(raw.mode) === 'lambda') {
    const config = parseLambdaConfig(raw)
    const stackName = app.node.tryGetContext('stackName') ?? LAMBDA_STACK_NAME
    return new LambdaGatewayStack(app, stackName, {
      stackName,
      env: { region: config.region },
      description: 'connect-chat-gateway: Amazon Connect chat starts from a Lambda function behind an HTTP API',
      config
    })
  }
  const config = parseConfig(raw)
  const stackName = app.node.tryGetContext('stackName') ?? STACK_NAME
  return new GatewayStack(app, stackName, {
    stackName,
    env: { region: config.region },
    description: 'connect-chat-gateway: Amazon Connect chat starts behind an HTTPS load balancer',
    config
  })
}
