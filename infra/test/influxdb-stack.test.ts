// The InfluxDB 3 prerequisites stack (bin/influxdb.ts): what a new account creates with
// CloudFormation before deploying store=influxdb, and the outputs the pipeline takes as context.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { SettingsError } from '../lib/config';
import { INFLUXDB3_PORT, InfluxDbStack, readInfluxDbStackSettings } from '../lib/influxdb-stack';
import { ACCOUNT, REGION } from './helpers';

const CONTEXT = { vpcId: 'vpc-0123456789abcdef0', subnetIds: 'subnet-0aaaaaaaaaaaaaaa1,subnet-0bbbbbbbbbbbbbbb2' };

function synthInflux(context: Record<string, string> = CONTEXT) {
  const settings = readInfluxDbStackSettings((key) => context[key]);
  const stack = new InfluxDbStack(new App(), `metrics-lake-influxdb-${settings.stage}`, { settings, env: { account: ACCOUNT, region: REGION } });
  const template = Template.fromStack(stack);
  return { stack, template, json: template.toJSON() as { Resources: Record<string, any>; Outputs: Record<string, any> } };
}

describe('InfluxDB prerequisites stack', () => {
  it('creates a private InfluxDB 3 Core cluster on port 8181 in the given subnets', () => {
    const { template } = synthInflux();
    template.resourceCountIs('AWS::Timestream::InfluxDBCluster', 1);
    template.hasResourceProperties('AWS::Timestream::InfluxDBCluster', {
      Name: 'metrics-lake-dev',
      DbParameterGroupIdentifier: 'InfluxDBV3Core',
      DbInstanceType: 'db.influx.medium',
      Port: INFLUXDB3_PORT,
      PubliclyAccessible: false,
      VpcSubnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'],
    });
    // No LiveAnalytics resource: this is the path for accounts that cannot use it.
    template.resourceCountIs('AWS::Timestream::Database', 0);
  });

  it('admits the InfluxDB port only from the functions\' security group', () => {
    const { stack, json } = synthInflux();
    const clusterSg = stack.getLogicalId(stack.clusterSecurityGroup);
    const functionsSg = stack.getLogicalId(stack.functionsSecurityGroup);
    const cluster = Object.values(json.Resources).find((r) => r.Type === 'AWS::Timestream::InfluxDBCluster');
    assert.deepStrictEqual(cluster.Properties.VpcSecurityGroupIds, [{ 'Fn::GetAtt': [clusterSg, 'GroupId'] }]);
    const ingress = json.Resources[clusterSg].Properties.SecurityGroupIngress;
    assert.deepStrictEqual(ingress.map((r: any) => [r.FromPort, r.ToPort, r.SourceSecurityGroupId]), [[8181, 8181, { 'Fn::GetAtt': [functionsSg, 'GroupId'] }]]);
    assert.ok(!JSON.stringify(ingress).includes('0.0.0.0/0'));
  });

  it('creates the two token secrets without a value, and outputs exactly what store=influxdb needs', () => {
    const { stack, json } = synthInflux();
    const secrets = Object.values(json.Resources).filter((r) => r.Type === 'AWS::SecretsManager::Secret');
    assert.equal(secrets.length, 2);
    for (const s of secrets) assert.equal(s.Properties.SecretString, undefined);
    const outputs = Object.fromEntries(Object.entries(json.Outputs).map(([k, v]) => [k, v.Value]));
    assert.deepStrictEqual(outputs.InfluxdbTokenSecretArn, { Ref: stack.getLogicalId(stack.writeTokenSecret.node.defaultChild as any) });
    assert.deepStrictEqual(outputs.InfluxdbReadTokenSecretArn, { Ref: stack.getLogicalId(stack.readTokenSecret.node.defaultChild as any) });
    assert.deepStrictEqual(outputs.SecurityGroupIds, { 'Fn::GetAtt': [stack.getLogicalId(stack.functionsSecurityGroup), 'GroupId'] });
    assert.ok(JSON.stringify(outputs.InfluxdbUrl).includes(':8181'));
    assert.ok(JSON.stringify(outputs.InfluxdbUrl).startsWith('{"Fn::Join":["",["https://",'));
    assert.deepStrictEqual(Object.keys(outputs).sort(), [
      'ClusterId',
      'InfluxAuthParametersSecretArn',
      'InfluxdbReadTokenSecretArn',
      'InfluxdbTokenSecretArn',
      'InfluxdbUrl',
      'SecurityGroupIds',
    ]);
  });

  it('keeps the cluster and secrets in prod, except after a failed first create', () => {
    const { json } = synthInflux({ ...CONTEXT, stage: 'prod' });
    for (const r of Object.values(json.Resources).filter((x) => ['AWS::Timestream::InfluxDBCluster', 'AWS::SecretsManager::Secret'].includes(x.Type))) {
      assert.equal(r.DeletionPolicy, 'RetainExceptOnCreate');
    }
  });

  it('refuses settings it cannot deploy', () => {
    const refused: [Record<string, string>, RegExp][] = [
      [{ subnetIds: CONTEXT.subnetIds }, /vpcId/],
      [{ vpcId: CONTEXT.vpcId }, /subnetIds/],
      [{ ...CONTEXT, subnetIds: 'subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa2,subnet-0aaaaaaaaaaaaaaa3,subnet-0aaaaaaaaaaaaaaa4' }, /1-3/],
      [{ ...CONTEXT, influxdbParameterGroup: 'InfluxDBV2' }, /InfluxDB 3/],
      [{ ...CONTEXT, influxdbInstanceType: 'db.t3.micro' }, /influxdbInstanceType/],
    ];
    for (const [context, message] of refused) {
      assert.throws(() => readInfluxDbStackSettings((key) => context[key]), (e: unknown) => e instanceof SettingsError && message.test((e as Error).message));
    }
  });
});
