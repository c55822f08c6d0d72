// `npx cdk synth` / `npx cdk deploy` run this (cdk.json).
import { App } from 'aws-cdk-lib'
import { DeployConfigError } from '../lib/config.js'
import { addGatewayStack } from '../lib/app.js'

const app = new App()
try {
  addGatewayStack(app)
} catch (err) {
  if (!(err instanceof DeployConfigError)) throw err
  // The message names each value to fix; a stack trace would only hide it.
  process.stderr.write(`${err.message}\n`)
  process.exit(1)
}
app.synth()
