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
  const named = (defaultName: string, region: string, description: string) => {
    const stackName: string = app.node.tryGetContext('stackName') ?? defaultName
    return [stackName, { stackName, env: { region }, description }] as const
  }
  if (readMode(raw.mode) === 'lambda') {
    const config = parseLambdaConfig(raw)
    const [id, props] = named(LAMBDA_STACK_NAME, config.region, 'connect-chat-gateway: Amazon Connect chat starts from a Lambda function behind an HTTP API')
    return new LambdaGatewayStack(app, id, { ...props, config })
  }
  const config = parseConfig(raw)
  const [id, props] = named(STACK_NAME, config.region, 'connect-chat-gateway: Amazon Connect chat starts behind an HTTPS load balancer')
  return new GatewayStack(app, id, { ...props, config })
}
