import { Aws } from 'aws-cdk-lib'
import * as iam from 'aws-cdk-lib/aws-iam'
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager'
import type { Construct } from 'constructs'

// What the gateway may do in Amazon Connect, and the secrets it signs and verifies with: the same
// for the Fargate task and the Lambda function.

export const instanceArn = (region: string, instanceId: string) => `arn:${Aws.PARTITION}:connect:${region}:${Aws.ACCOUNT_ID}:instance/${instanceId}`

/** StartChatContact on one flow, ending and describing its contacts, the availability reads. Nothing else. */
export function connectStatements (config: { region: string; instanceId: string; contactFlowId: string }): iam.PolicyStatement[] {
  const instance = instanceArn(config.region, config.instanceId)
  return [
    new iam.PolicyStatement({
      sid: 'StartChatContactOnThisInstance',
      actions: ['connect:StartChatContact'],
      resources: [`${instance}/contact/*`, `${instance}/contact-flow/${config.contactFlowId}`]
    }),
    // Ending a chat (POST /chat/end) and asking whether a counted chat has ended (the chat quota).
    new iam.PolicyStatement({
      sid: 'EndAndDescribeChatsOnThisInstance',
      actions: ['connect:StopContact', 'connect:DescribeContact'],
      resources: [`${instance}/contact/*`]
    }),
    // GET /chat/availability: a queue's status and hours, and its agents; reads only.
    new iam.PolicyStatement({
      sid: 'AvailabilityReadsOnThisInstance',
      actions: ['connect:DescribeQueue', 'connect:GetEffectiveHoursOfOperations', 'connect:GetCurrentMetricData'],
      resources: [`${instance}/queue/*`, `${instance}/operating-hours/*`]
    })
  ]
}

export interface AppSecrets {
  resumeTokenSecret: secretsmanager.Secret
  customerJwtSecret?: secretsmanager.ISecret
}

/**
 * RESUME_TOKEN_SECRET, generated into Secrets Manager at deploy time (no value ever appears in the
 * template), and CUSTOMER_JWT_SECRET when asked for: generated, or an existing secret by ARN.
 */
/** `customerJwtSecret`: undefined (none), 'generate', or an existing secret's ARN. */
export function addAppSecrets (scope: Construct, customerJwtSecret: string | undefined): AppSecrets {
  const resumeTokenSecret = new secretsmanager.Secret(scope, 'ResumeTokenSecret', {
    description: 'connect-chat-gateway RESUME_TOKEN_SECRET: comma-separated keys, the first signs',
    // No punctuation: a comma would split the value into several keys.
    generateSecretString: { passwordLength: 48, excludePunctuation: true }
  })
  if (customerJwtSecret === undefined) return { resumeTokenSecret }
  return {
    resumeTokenSecret,
    customerJwtSecret: customerJwtSecret === 'generate'
      ? new secretsmanager.Secret(scope, 'CustomerJwtSecret', {
        description: 'connect-chat-gateway CUSTOMER_JWT_SECRET: your site\'s backend signs customer tokens with it',
        generateSecretString: { passwordLength: 64, excludePunctuation: true }
      })
      : secretsmanager.Secret.fromSecretCompleteArn(scope, 'CustomerJwtSecret', customerJwtSecret)
  }
}
