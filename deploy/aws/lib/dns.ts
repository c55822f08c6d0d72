import { CfnOutput } from 'aws-cdk-lib'
import type * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2'
import * as route53 from 'aws-cdk-lib/aws-route53'
import * as targets from 'aws-cdk-lib/aws-route53-targets'
import type { Construct } from 'constructs'

export interface DnsRecord {
  domainName: string
  hostedZoneId: string
  hostedZoneName: string
}

/**
 * An alias A record for the load balancer in an existing hosted zone. The zone is described by its
 * id and name rather than looked up, so synthesis stays offline.
 */
export function addDnsRecord (scope: Construct, dns: DnsRecord, alb: elbv2.IApplicationLoadBalancer): route53.ARecord {
  const zone = route53.HostedZone.fromHostedZoneAttributes(scope, 'HostedZone', { hostedZoneId: dns.hostedZoneId, zoneName: dns.hostedZoneName })
  const record = new route53.ARecord(scope, 'AliasRecord', {
    zone,
    recordName: dns.domainName,
    target: route53.RecordTarget.fromAlias(new targets.LoadBalancerTarget(alb)),
    comment: 'connect-chat-gateway load balancer'
  })
  new CfnOutput(scope, 'ServiceUrl', { value: `https://${dns.domainName}` })
  return record
}
