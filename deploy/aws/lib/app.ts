import { App } from 'aws-cdk-lib'
import { parseConfig, readContext } from './config.js'
import { GatewayStack } from './gateway-stack.js'

export const STACK_NAME = 'ConnectChatGateway'

/**
 * The stack from the app's context values. Only the region is given to the environment: with an
 * account too, CDK would look availability zones up in that account, which needs credentials.
 */
export function addGatewayStack (app: App): GatewayStack {
  const config = parseConfig(readContext((key) => app.node.tryGetContext(key)))
  const stackName = app.node.tryGetContext('stackName') ?? STACK_NAME
  return new GatewayStack(app, stackName, {
    stackName,
    env: { region: config.region },
    description: 'connect-chat-gateway: Amazon Connect chat starts behind an HTTPS load balancer',
    config
  })
}
