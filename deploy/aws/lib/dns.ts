import { CfnOutput } from 'aws-cdk-lib'
import * as route53 from 'aws-cdk-lib/aws-route53'
import type { Construct } from 'constructs'

export interface DnsRecord {
  domainName: string
  hostedZoneId: string
  hostedZoneName: string
}

/**
 * An alias A record in an existing hosted zone for the gateway's front door (the load balancer, or
 * the HTTP API's domain). The zone is described by its id and name rather than looked up, so
 * synthesis stays offline.
 */
export function addDnsRecord (scope: Construct, dns: DnsRecord, target: route53.IAliasRecordTarget, comment: string): route53.ARecord {
  const zone = route53.HostedZone.fromHostedZoneAttributes(scope, 'HostedZone', { hostedZoneId: dns.hostedZoneId, zoneName: dns.hostedZoneName })
  const record = new route53.ARecord(scope, 'AliasRecord', {
    zone,
    recordName: dns.domainName,
    target: route53.RecordTarget.fromAlias(target),
    comment
  })
  new CfnOutput(scope, 'ServiceUrl', { value: `https://${dns.domainName}` })
  return record
}
