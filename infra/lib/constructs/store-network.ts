// The network path to a Timestream for InfluxDB instance. The instance lives in a VPC and has
// no IAM on its data plane, so the writer and query functions join that VPC (its subnets and
// security groups that the instance admits) and reach AWS APIs through endpoints instead of a
// NAT gateway: an S3 gateway endpoint (free; the writer reads objects and writes dead letters)
// and a Secrets Manager interface endpoint (the tokens). Each is optional on its own
// (s3Endpoint / secretsManagerEndpoint): without one, the VPC must already provide it, or a NAT
// gateway.
//
// The interface endpoint's private DNS name (secretsmanager.<region>.amazonaws.com resolving to
// the endpoint) works only in a VPC with both DNS attributes on, enableDnsSupport and
// enableDnsHostnames, and it takes at most one subnet per Availability Zone:
// https://docs.aws.amazon.com/vpc/latest/privatelink/create-interface-endpoint.html
// The VPC is not looked up at synth (no credentials needed), so the deploy guide checks both.

import { Annotations, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import type { StoreNetworkSettings } from '../config';

export class StoreNetwork extends Construct {
  public readonly settings: StoreNetworkSettings;
  public readonly endpointSecurityGroup?: ec2.CfnSecurityGroup;

  constructor(scope: Construct, id: string, settings: StoreNetworkSettings) {
    super(scope, id);
    this.settings = settings;
    const region = Stack.of(this).region;
    if (settings.s3GatewayEndpoint) {
      new ec2.CfnVPCEndpoint(this, 'S3Endpoint', {
        vpcId: settings.vpcId,
        serviceName: `com.amazonaws.${region}.s3`,
        vpcEndpointType: 'Gateway',
        routeTableIds: settings.s3GatewayEndpoint.routeTableIds,
      });
    }
    if (!settings.secretsManagerEndpoint) return;
    Annotations.of(this).addWarningV2(
      'metrics-lake:endpoint-dns',
      `the Secrets Manager endpoint needs enableDnsSupport and enableDnsHostnames on ${settings.vpcId} (aws ec2 describe-vpc-attribute --vpc-id ${settings.vpcId} --attribute enableDnsHostnames) and at most one of its subnets (${settings.secretsManagerEndpoint.subnetIds.join(', ')}) per Availability Zone; otherwise the stack fails to create it`,
    );
    // HTTPS from the functions' security groups only.
    this.endpointSecurityGroup = new ec2.CfnSecurityGroup(this, 'EndpointSecurityGroup', {
      vpcId: settings.vpcId,
      groupDescription: 'metrics-lake: Secrets Manager endpoint, HTTPS from the store functions',
      securityGroupIngress: settings.securityGroupIds.map((sg) => ({
        ipProtocol: 'tcp',
        fromPort: 443,
        toPort: 443,
        sourceSecurityGroupId: sg,
        description: `HTTPS from the store functions (${sg})`,
      })),
      // An interface endpoint only answers; it opens no connection of its own.
      securityGroupEgress: [{ ipProtocol: '-1', cidrIp: '127.0.0.1/32', description: 'no outbound traffic' }],
    });
    new ec2.CfnVPCEndpoint(this, 'SecretsManagerEndpoint', {
      vpcId: settings.vpcId,
      serviceName: `com.amazonaws.${region}.secretsmanager`,
      vpcEndpointType: 'Interface',
      privateDnsEnabled: true,
      subnetIds: settings.secretsManagerEndpoint.subnetIds,
      securityGroupIds: [this.endpointSecurityGroup.attrGroupId],
    });
  }

  /** Runs `fn` in the VPC, with the ENI permissions Lambda needs for it. */
  public place(fn: lambda.Function): void {
    const cfn = fn.node.defaultChild as lambda.CfnFunction;
    cfn.vpcConfig = { subnetIds: this.settings.subnetIds, securityGroupIds: this.settings.securityGroupIds };
    // AWS's policy for VPC functions: create, describe and delete the function's network
    // interfaces (these EC2 actions take no resource scope that Lambda could predict).
    fn.role?.addManagedPolicy(iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaVPCAccessExecutionRole'));
    dropCheckovSkip(cfn, 'CKV_AWS_117');
  }
}

/** Removes a checkov skip whose reason no longer holds (the function is in a VPC now). */
function dropCheckovSkip(resource: lambda.CfnFunction, id: string): void {
  const existing = (resource.getMetadata('checkov') as { skip?: { id: string; comment: string }[] } | undefined)?.skip ?? [];
  resource.addMetadata('checkov', { skip: existing.filter((s) => s.id !== id) });
}
