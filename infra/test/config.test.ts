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
  it('defaults to a dev stage on LiveAnalytics with cargo-lambda builds', () => {
    const s = read({});
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
    const s = read({ stage: 'prod', createEventBus: 'true', writerReservedConcurrency: '20', jwtIssuer: 'https://x/', jwtAudience: 'a, b' });
    assert.equal(s.stage, 'prod');
    assert.equal(s.createEventBus, true);
    assert.equal(s.reservedConcurrency.writer, 20);
    assert.deepStrictEqual(s.jwtAudience, ['a', 'b']);
  });

  const refused: [string, Record<string, unknown>, RegExp][] = [
    ['unknown stage', { stage: 'qa' }, /stage/],
    ['both bus options', { eventBusName: 'x', createEventBus: 'true' }, /not both/],
    ['influxdb without endpoint', { store: 'influxdb' }, /influxdbUrl/],
    ['influxdb settings with timestream', { influxdbUrl: 'https://x' }, /only to store=influxdb/],
    ['VPC settings with timestream', { subnetIds: 'subnet-0aaaaaaaaaaaaaaa1' }, /only to store=influxdb/],
    ['influxdb without its VPC', { ...influx, vpcId: undefined }, /vpcId, subnetIds and securityGroupIds/],
    ['influxdb without security groups', { ...influx, securityGroupIds: '' }, /securityGroupIds/],
    ['influxdb endpoints without route tables', { ...influx, routeTableIds: '' }, /routeTableIds/],
    ['route tables without endpoints', { ...influx, vpcEndpoints: 'false' }, /routeTableIds applies only/],
    ['a subnet id that is not one', { ...influx, subnetIds: 'subnet-1,x' }, /subnetIds/],
    ['v2 without an org', { ...influx, influxdbApi: 'v2' }, /influxdbOrg/],
    ['an org with v3', { ...influx, influxdbOrg: 'o' }, /only to influxdbApi=v2/],
    ['an unknown InfluxDB API', { ...influx, influxdbApi: 'v1' }, /influxdbApi/],
    ['plain-http InfluxDB endpoint', { ...influx, influxdbUrl: 'http://abc:8181' }, /https/],
    ['unknown store', { store: 'postgres' }, /store/],
    ['issuer without audience', { jwtIssuer: 'https://x/' }, /jwtAudience/],
    ['plain-http issuer', { jwtIssuer: 'http://x/', jwtAudience: 'a' }, /https/],
    ['two alarm targets', { alarmEmail: 'a@b.c', alarmTopicArn: 'arn:aws:sns:us-east-1:1:t' }, /not both/],
    ['zero reserved concurrency', { writerReservedConcurrency: '0' }, /writerReservedConcurrency/],
    ['event-source concurrency below 2', { writerMaxConcurrency: '1' }, /writerMaxConcurrency/],
    ['not a boolean', { createEventBus: 'yes' }, /true or false/],
    ['bad database name', { timestreamDatabaseName: 'a b' }, /timestreamDatabaseName/],
    ['bad lambda code source', { lambdaCode: 'docker' }, /lambdaCode/],
    ['memory retention over a year', { memoryRetentionHours: '9000' }, /memoryRetentionHours/],
    ['unknown Mixpanel residency', { mixpanelResidency: 'uk' }, /mixpanelResidency/],
    ['plain-http Segment endpoint', { segmentEndpoint: 'http://api.segment.io' }, /segmentEndpoint/],
  ];
  for (const [name, context, message] of refused) {
    it(`refuses ${name}`, () => {
      assert.throws(() => read(context), (e: unknown) => e instanceof SettingsError && message.test((e as Error).message));
    });
  }

  it('reads an InfluxDB instance, its API and the VPC path to it', () => {
    const s = read({ ...influx, influxdbApi: 'v2', influxdbOrg: 'metrics' });
    assert.deepStrictEqual(s.influxdb, {
      url: INFLUX_CONTEXT.influxdbUrl,
      tokenSecretArn: INFLUX_CONTEXT.influxdbTokenSecretArn,
      api: 'v2',
      org: 'metrics',
      network: {
        vpcId: 'vpc-0123456789abcdef0',
        subnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'],
        securityGroupIds: ['sg-0ccccccccccccccc3'],
        createEndpoints: true,
        routeTableIds: ['rtb-0ddddddddddddddd4', 'rtb-0eeeeeeeeeeeeeee5'],
      },
    });
    assert.equal(read(influx).influxdb?.api, 'v3');
  });

  it('flags context keys it does not know, but not CDK’s own', () => {
    assert.deepStrictEqual(unknownContextKeys(['stage', 'stge', 'aws:cdk:bundling-stacks', '@aws-cdk/core:x']), ['stge']);
  });
});

describe('Lambda code', () => {
  it('prebuilt: zips target/lambda/<binary>/ and refuses to synthesize when it was not built', () => {
    const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'ws-'));
    const build = () => {
      const app = new App({ context: { lambdaCode: 'prebuilt' } });
      const settings = readSettings((k) => app.node.tryGetContext(k), workspace);
      return new MetricsLakeStack(app, 'prebuilt', { settings });
    };
    assert.throws(build, /cargo lambda build --release --arm64/);
    for (const binary of ['metrics-enrich', 'metrics-writer', 'metrics-forwarder', 'metrics-query']) {
      fs.mkdirSync(path.join(workspace, 'target', 'lambda', binary), { recursive: true });
      fs.writeFileSync(path.join(workspace, 'target', 'lambda', binary, 'bootstrap'), '#!/bin/sh\n');
    }
    const stack = build();
    const fn = stack.functions.writer.node.defaultChild as any;
    assert.equal(fn.runtime, 'provided.al2023');
    assert.deepStrictEqual(fn.architectures, ['arm64']);
  });
});
