// What a new account needs before `store=influxdb`, as far as CloudFormation can create it: a
// Timestream for InfluxDB 3 cluster in the account's VPC, the security group the writer and
// query functions run in (the only one the cluster admits), and the two secrets the functions
// read their tokens from. The tokens themselves are InfluxDB's, made with its own API, so the
// secrets are created empty and filled by the operator (infra/README.md, "Deploying with
// InfluxDB"). A separate app (bin/influxdb.ts), so that it exists before the pipeline's stack
// is synthesized with its outputs.
//
// https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-timestream-influxdbcluster.html
// https://docs.aws.amazon.com/timestream/latest/developerguide/creating-a-cluster.html

import { CfnOutput, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as timestream from 'aws-cdk-lib/aws-timestream';
import { Construct } from 'constructs';
import { type ContextReader, type Stage, SettingsError } from './config';
import { placeholder } from './constructs/functions';
import { REASONS, skipCheckov } from './suppressions';

/** InfluxDB 3's port (InfluxDB 2 serves 8086). */
export const INFLUXDB3_PORT = 8181;
/** AWS's parameter groups for InfluxDB 3: Core (single node) or Enterprise. */
export const INFLUXDB3_PARAMETER_GROUPS = ['InfluxDBV3Core', 'InfluxDBV3Enterprise1Node', 'InfluxDBV3Enterprise'] as const;
export const INFLUXDB_INSTANCE_TYPES = ['db.influx.medium', 'db.influx.large', 'db.influx.xlarge', 'db.influx.2xlarge', 'db.influx.4xlarge'] as const;

export interface InfluxDbStackSettings {
  readonly stage: Stage;
  readonly vpcId: string;
  /** Subnets of the cluster (1-3), in the VPC the functions will run in. */
  readonly subnetIds: string[];
  readonly parameterGroup: (typeof INFLUXDB3_PARAMETER_GROUPS)[number];
  readonly instanceType: (typeof INFLUXDB_INSTANCE_TYPES)[number];
}

/** Settings from `-c key=value`: stage, vpcId, subnetIds, influxdbParameterGroup, influxdbInstanceType. */
export function readInfluxDbStackSettings(read: ContextReader): InfluxDbStackSettings {
  const text = (key: string): string | undefined => {
    const value = read(key);
    return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
  };
  const stage = text('stage') ?? 'dev';
  if (stage !== 'dev' && stage !== 'prod') throw new SettingsError('stage must be dev or prod');
  const vpcId = text('vpcId');
  if (!vpcId || !/^vpc-[0-9a-f]{8,17}$/.test(vpcId)) throw new SettingsError('set vpcId: the VPC the cluster and the functions share');
  const subnetIds = (text('subnetIds') ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (subnetIds.length < 1 || subnetIds.length > 3 || !subnetIds.every((s) => /^subnet-[0-9a-f]{8,17}$/.test(s))) {
    throw new SettingsError('set subnetIds: 1-3 comma-separated subnet ids of that VPC for the cluster');
  }
  const parameterGroup = text('influxdbParameterGroup') ?? 'InfluxDBV3Core';
  if (!(INFLUXDB3_PARAMETER_GROUPS as readonly string[]).includes(parameterGroup)) {
    throw new SettingsError(`influxdbParameterGroup must be one of ${INFLUXDB3_PARAMETER_GROUPS.join(', ')} (InfluxDB 3; the query API does not read InfluxDB 2)`);
  }
  const instanceType = text('influxdbInstanceType') ?? 'db.influx.medium';
  if (!(INFLUXDB_INSTANCE_TYPES as readonly string[]).includes(instanceType)) {
    throw new SettingsError(`influxdbInstanceType must be one of ${INFLUXDB_INSTANCE_TYPES.join(', ')}`);
  }
  return {
    stage,
    vpcId,
    subnetIds,
    parameterGroup: parameterGroup as InfluxDbStackSettings['parameterGroup'],
    instanceType: instanceType as InfluxDbStackSettings['instanceType'],
  };
}

export interface InfluxDbStackProps extends StackProps {
  readonly settings: InfluxDbStackSettings;
}

export class InfluxDbStack extends Stack {
  public readonly cluster: timestream.CfnInfluxDBCluster;
  public readonly functionsSecurityGroup: ec2.CfnSecurityGroup;
  public readonly clusterSecurityGroup: ec2.CfnSecurityGroup;
  public readonly writeTokenSecret: secretsmanager.Secret;
  public readonly readTokenSecret: secretsmanager.Secret;

  constructor(scope: Construct, id: string, props: InfluxDbStackProps) {
    super(scope, id, props);
    const { settings } = props;
    const prod = settings.stage === 'prod';
    const removal = prod ? RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE : RemovalPolicy.DESTROY;

    // The functions' group: out to the cluster, and HTTPS to the VPC endpoints (S3's gateway
    // endpoint is reached by its public prefix list, so HTTPS to any address).
    this.functionsSecurityGroup = new ec2.CfnSecurityGroup(this, 'FunctionsSecurityGroup', {
      vpcId: settings.vpcId,
      groupDescription: 'metrics-lake writer and query functions (securityGroupIds)',
      securityGroupEgress: [{ ipProtocol: 'tcp', fromPort: 443, toPort: 443, cidrIp: '0.0.0.0/0', description: 'HTTPS to S3 and Secrets Manager endpoints' }],
    });
    this.clusterSecurityGroup = new ec2.CfnSecurityGroup(this, 'ClusterSecurityGroup', {
      vpcId: settings.vpcId,
      groupDescription: 'metrics-lake InfluxDB: its port from the metrics-lake functions only',
      securityGroupIngress: [
        {
          ipProtocol: 'tcp',
          fromPort: INFLUXDB3_PORT,
          toPort: INFLUXDB3_PORT,
          sourceSecurityGroupId: this.functionsSecurityGroup.attrGroupId,
          description: 'InfluxDB from the metrics-lake functions',
        },
      ],
      // The database only answers.
      securityGroupEgress: [{ ipProtocol: '-1', cidrIp: '127.0.0.1/32', description: 'no outbound traffic' }],
    });
    new ec2.CfnSecurityGroupEgress(this, 'FunctionsToCluster', {
      groupId: this.functionsSecurityGroup.attrGroupId,
      ipProtocol: 'tcp',
      fromPort: INFLUXDB3_PORT,
      toPort: INFLUXDB3_PORT,
      destinationSecurityGroupId: this.clusterSecurityGroup.attrGroupId,
      description: 'InfluxDB',
    });

    this.cluster = new timestream.CfnInfluxDBCluster(this, 'Cluster', {
      name: `metrics-lake-${settings.stage}`,
      dbParameterGroupIdentifier: settings.parameterGroup,
      dbInstanceType: settings.instanceType,
      port: INFLUXDB3_PORT,
      networkType: 'IPV4',
      publiclyAccessible: false,
      vpcSubnetIds: settings.subnetIds,
      vpcSecurityGroupIds: [this.clusterSecurityGroup.attrGroupId],
    });
    this.cluster.applyRemovalPolicy(removal);

    const secret = (id: string, description: string) => {
      const created = new secretsmanager.Secret(this, id, {
        description,
        // No value in the template: a placeholder the functions refuse until the operator
        // writes the token (infra/README.md).
        generateSecretString: placeholder({ token: '' }),
        removalPolicy: removal,
      });
      skipCheckov(
        created,
        { id: 'CKV_AWS_149', reason: REASONS.awsManagedEncryption },
        { id: 'CKV2_AWS_57', reason: 'An InfluxDB token, made and revoked with InfluxDB\'s own API; there is no rotation function for it.' },
      );
      return created;
    };
    this.writeTokenSecret = secret('WriteToken', 'metrics-lake writer: InfluxDB token that creates databases and writes them, {"token": "..."} (set after deploying)');
    this.readTokenSecret = secret(
      'ReadToken',
      'metrics-lake query API: InfluxDB token that reads, {"token": "..."} or {"token", "tenants": {"<tenant>": "<token>"}} (set after deploying)',
    );

    // The values `cdk deploy` of the pipeline takes as context.
    new CfnOutput(this, 'InfluxdbUrl', { value: `https://${this.cluster.attrEndpoint}:${INFLUXDB3_PORT}` });
    new CfnOutput(this, 'InfluxdbTokenSecretArn', { value: this.writeTokenSecret.secretArn });
    new CfnOutput(this, 'InfluxdbReadTokenSecretArn', { value: this.readTokenSecret.secretArn });
    new CfnOutput(this, 'SecurityGroupIds', { value: this.functionsSecurityGroup.attrGroupId });
    // Where the service keeps the cluster's admin credentials (read them to make the tokens).
    new CfnOutput(this, 'InfluxAuthParametersSecretArn', { value: this.cluster.attrInfluxAuthParametersSecretArn });
    new CfnOutput(this, 'ClusterId', { value: this.cluster.attrId });
  }
}
