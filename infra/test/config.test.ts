// Context parsing: defaults, and combinations that must be refused before anything is synthesized.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { App } from 'aws-cdk-lib';
import { readSettings, SettingsError, unknownContextKeys } from '../lib/config';
import { MetricsLakeStack } from '../lib/metrics-lake-stack';
import { INFLUX_CONTEXT } from './helpers';

const read = (context: Record<string, unknown>) => readSettings((key) => context[key], '/workspace');
const influx: Record<string, unknown> = { ...INFLUX_CONTEXT };

describe('settings from context', () => {
  it('has no default store: LiveAnalytics is closed to new accounts, InfluxDB needs an instance', () => {
    assert.throws(
      () => read({}),
      (e: unknown) => e instanceof SettingsError && /-c store=influxdb/.test((e as Error).message) && /-c store=timestream/.test((e as Error).message),
    );
    assert.equal(read({ store: 'influxdb', ...influx }).store, 'influxdb');
  });

  it('defaults to a dev stage with cargo-lambda builds', () => {
    const s = read({ store: 'timestream' });
    assert.equal(s.stage, 'dev');
    assert.equal(s.store, 'timestream');
    assert.equal(s.lambdaCode, 'cargo-lambda');
    assert.equal(s.skipBundling, false);
    assert.equal(s.createEventBus, false);
    assert.equal(s.eventBusName, undefined);
    assert.deepStrictEqual(s.reservedConcurrency, { enrich: undefined, writer: undefined, forwarder: undefined, query: undefined });
    assert.equal(s.writerMaxConcurrency, 5);
  });

  it('parses strings from the command line', () => {
    const s = read({ store: 'timestream', stage: 'prod', createEventBus: 'true', writerReservedConcurrency: '20', jwtIssuer: 'https://x/', jwtAudience: 'a, b' });
    assert.equal(s.stage, 'prod');
    assert.equal(s.createEventBus, true);
    assert.equal(s.reservedConcurrency.writer, 20);
    assert.deepStrictEqual(s.jwtAudience, ['a', 'b']);
  });

  const lt = { store: 'timestream' };
  const refused: [string, Record<string, unknown>, RegExp][] = [
    ['unknown stage', { ...lt, stage: 'qa' }, /stage/],
    ['both bus options', { ...lt, eventBusName: 'x', createEventBus: 'true' }, /not both/],
    ['influxdb without endpoint', { store: 'influxdb' }, /influxdbUrl/],
    ['influxdb settings with timestream', { ...lt, influxdbUrl: 'https://x' }, /only to store=influxdb/],
    ['a read token with timestream', { ...lt, influxdbReadTokenSecretArn: INFLUX_CONTEXT.influxdbReadTokenSecretArn }, /only to store=influxdb/],
    ['VPC settings with timestream', { ...lt, subnetIds: 'subnet-0aaaaaaaaaaaaaaa1' }, /only to store=influxdb/],
    ['influxdb without its VPC', { ...influx, vpcId: undefined }, /vpcId, subnetIds and securityGroupIds/],
    ['influxdb without security groups', { ...influx, securityGroupIds: '' }, /securityGroupIds/],
    ['influxdb S3 endpoint without route tables', { ...influx, routeTableIds: '' }, /routeTableIds/],
    ['route tables without the S3 endpoint', { ...influx, s3Endpoint: 'false' }, /routeTableIds applies only/],
    ['route tables without endpoints', { ...influx, vpcEndpoints: 'false' }, /routeTableIds applies only/],
    ['endpoint subnets without the Secrets Manager endpoint', { ...influx, secretsManagerEndpoint: 'false', endpointSubnetIds: 'subnet-0aaaaaaaaaaaaaaa1' }, /endpointSubnetIds applies only/],
    ['a subnet id that is not one', { ...influx, subnetIds: 'subnet-1,x' }, /subnetIds/],
    ['a subnet listed twice', { ...influx, subnetIds: 'subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa1' }, /twice/],
    // The query function reads only InfluxDB 3 (/api/v3/query_sql): v2 would chart nothing.
    ['InfluxDB 2 (the query API reads only InfluxDB 3)', { ...influx, influxdbApi: 'v2', influxdbOrg: 'metrics' }, /influxdbApi=v2 is not supported.*\/api\/v3\/query_sql/],
    ['an org (InfluxDB 2 only)', { ...influx, influxdbOrg: 'o' }, /influxdbOrg/],
    ['an unknown InfluxDB API', { ...influx, influxdbApi: 'v1' }, /influxdbApi/],
    ['plain-http InfluxDB endpoint', { ...influx, influxdbUrl: 'http://abc:8181' }, /https/],
    [
      'a partial token secret ARN (no 6-character suffix)',
      { ...influx, influxdbTokenSecretArn: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:influx' },
      /influxdbTokenSecretArn must be the secret's complete ARN.*6-character suffix/,
    ],
    ['a token secret that is not a secret ARN', { ...influx, influxdbTokenSecretArn: 'arn:aws:ssm:us-east-1:111111111111:parameter/influx-AbCdEf' }, /complete ARN/],
    ['influxdb without a read token', { ...influx, influxdbReadTokenSecretArn: undefined }, /influxdbReadTokenSecretArn/],
    ['a partial read token secret ARN', { ...influx, influxdbReadTokenSecretArn: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:read' }, /influxdbReadTokenSecretArn must be the secret's complete ARN/],
    ["the writer's token for the query function", { ...influx, influxdbReadTokenSecretArn: INFLUX_CONTEXT.influxdbTokenSecretArn }, /secret of its own/],
    ['unknown store', { store: 'postgres' }, /store/],
    ['issuer without audience', { ...lt, jwtIssuer: 'https://x/' }, /jwtAudience/],
    ['plain-http issuer', { ...lt, jwtIssuer: 'http://x/', jwtAudience: 'a' }, /https/],
    ['two alarm targets', { ...lt, alarmEmail: 'a@b.c', alarmTopicArn: 'arn:aws:sns:us-east-1:1:t' }, /not both/],
    ['zero reserved concurrency', { ...lt, writerReservedConcurrency: '0' }, /writerReservedConcurrency/],
    ['event-source concurrency below 2', { ...lt, writerMaxConcurrency: '1' }, /writerMaxConcurrency/],
    ['not a boolean', { ...lt, createEventBus: 'yes' }, /true or false/],
    ['bad database name', { ...lt, timestreamDatabaseName: 'a b' }, /timestreamDatabaseName/],
    ['bad lambda code source', { ...lt, lambdaCode: 'docker' }, /lambdaCode/],
    ['memory retention over a year', { ...lt, memoryRetentionHours: '9000' }, /memoryRetentionHours/],
    ['unknown Mixpanel residency', { ...lt, mixpanelResidency: 'uk' }, /mixpanelResidency/],
    ['plain-http Segment endpoint', { ...lt, segmentEndpoint: 'http://api.segment.io' }, /segmentEndpoint/],
  ];
  for (const [name, context, message] of refused) {
    it(`refuses ${name}`, () => {
      assert.throws(() => read(context), (e: unknown) => e instanceof SettingsError && message.test((e as Error).message));
    });
  }

  it('reads an InfluxDB 3 instance, its two tokens and the VPC path to it', () => {
    const s = read(influx);
    assert.deepStrictEqual(s.influxdb, {
      url: INFLUX_CONTEXT.influxdbUrl,
      tokenSecretArn: INFLUX_CONTEXT.influxdbTokenSecretArn,
      readTokenSecretArn: INFLUX_CONTEXT.influxdbReadTokenSecretArn,
      api: 'v3',
      network: {
        vpcId: 'vpc-0123456789abcdef0',
        subnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'],
        securityGroupIds: ['sg-0ccccccccccccccc3'],
        s3GatewayEndpoint: { routeTableIds: ['rtb-0ddddddddddddddd4', 'rtb-0eeeeeeeeeeeeeee5'] },
        secretsManagerEndpoint: { subnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'] },
      },
    });
    assert.equal(read({ ...influx, influxdbApi: 'v3' }).influxdb?.api, 'v3');
  });

  it('makes each VPC endpoint optional on its own, the interface endpoint in its own subnets', () => {
    const { routeTableIds: _, ...noRouteTables } = influx;
    const secretsOnly = read({ ...noRouteTables, s3Endpoint: 'false' }).influxdb!.network;
    assert.equal(secretsOnly.s3GatewayEndpoint, undefined);
    assert.deepStrictEqual(secretsOnly.secretsManagerEndpoint, { subnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'] });
    const s3Only = read({ ...influx, secretsManagerEndpoint: 'false' }).influxdb!.network;
    assert.equal(s3Only.secretsManagerEndpoint, undefined);
    assert.deepStrictEqual(s3Only.s3GatewayEndpoint?.routeTableIds, ['rtb-0ddddddddddddddd4', 'rtb-0eeeeeeeeeeeeeee5']);
    const none = read({ ...noRouteTables, vpcEndpoints: 'false' }).influxdb!.network;
    assert.equal(none.s3GatewayEndpoint, undefined);
    assert.equal(none.secretsManagerEndpoint, undefined);
    // Lambda may use two subnets of one AZ; the endpoint takes one per AZ, so it can have its own.
    const ownSubnets = read({ ...influx, endpointSubnetIds: 'subnet-0fffffffffffffff6' }).influxdb!.network;
    assert.deepStrictEqual(ownSubnets.secretsManagerEndpoint, { subnetIds: ['subnet-0fffffffffffffff6'] });
    assert.deepStrictEqual(ownSubnets.subnetIds, ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2']);
  });

  it('refuses reservations that leave the account less than the 100 unreserved executions Lambda keeps', () => {
    // The documented prod example reserves 35 in all.
    const example = { store: 'timestream', enrichReservedConcurrency: '10', writerReservedConcurrency: '10', forwarderReservedConcurrency: '5', queryReservedConcurrency: '10' };
    assert.equal(read(example).lambdaConcurrencyLimit, 1000);
    assert.equal(read(example).reservedConcurrency.writer, 10);
    assert.equal(read({ ...example, lambdaConcurrencyLimit: '135' }).reservedConcurrency.enrich, 10);
    for (const limit of ['10', '100', '134']) {
      assert.throws(
        () => read({ ...example, lambdaConcurrencyLimit: limit }),
        (e: unknown) => e instanceof SettingsError && /reserve 35 executions/.test((e as Error).message) && /get-account-settings/.test((e as Error).message),
      );
    }
    // No reservation: nothing to check, whatever the limit.
    assert.equal(read({ store: 'timestream', lambdaConcurrencyLimit: '10' }).lambdaConcurrencyLimit, 10);
  });

  it('flags context keys it does not know, but not CDK’s own', () => {
    assert.deepStrictEqual(unknownContextKeys(['stage', 'stge', 'aws:cdk:bundling-stacks', '@aws-cdk/core:x']), ['stge']);
  });
});

describe('Lambda code', () => {
  it('prebuilt: zips target/lambda/<binary>/ and refuses to synthesize when it was not built', () => {
    const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'ws-'));
    const build = () => {
      const app = new App({ context: { lambdaCode: 'prebuilt', store: 'timestream' } });
      const settings = readSettings((k) => app.node.tryGetContext(k), workspace);
      return new MetricsLakeStack(app, 'prebuilt', { settings });
    };
    assert.throws(build, /cargo lambda build --release --arm64/);
    for (const binary of ['metrics-enrich', 'metrics-writer', 'metrics-forwarder', 'metrics-query', 'metrics-alert-evaluator']) {
      fs.mkdirSync(path.join(workspace, 'target', 'lambda', binary), { recursive: true });
      fs.writeFileSync(path.join(workspace, 'target', 'lambda', binary, 'bootstrap'), '#!/bin/sh\n');
    }
    const stack = build();
    const fn = stack.functions.writer.node.defaultChild as any;
    assert.equal(fn.runtime, 'provided.al2023');
    assert.deepStrictEqual(fn.architectures, ['arm64']);
  });
});
