// Resources and properties of the synthesized stack.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import {
  DATA_OUTPUT_PREFIX,
  DELIVERY_BUFFER_INTERVAL,
  DELIVERY_BUFFER_SIZE,
  ERROR_OUTPUT_PREFIX,
  PROCESSOR_BUFFER_SIZE,
} from '../lib/constructs/ingest';
import { FORWARDER_TIMEOUT, WRITER_TIMEOUT } from '../lib/constructs/functions';
import { MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT_FACTOR } from '../lib/constructs/storage';
import { INFLUX_CONTEXT, list, logicalId, resourcesOfType, synth, type Synthesized } from './helpers';

const dev = () => synth();
const prod = () => synth({ stage: 'prod', alarmEmail: 'alarms@example.com' });

function fnIds(s: Synthesized) {
  const f = s.stack.functions;
  return {
    enrich: logicalId(s, f.enrich),
    writer: logicalId(s, f.writer),
    forwarder: logicalId(s, f.forwarder),
    query: logicalId(s, f.query),
    alertEvaluator: logicalId(s, s.stack.alerts.evaluator),
  };
}

function env(s: Synthesized, id: string): Record<string, unknown> {
  return s.json.Resources[id].Properties.Environment.Variables;
}

describe('Firehose delivery stream', () => {
  it('is DirectPut, encrypted, GZIP to Data/ by hour with Error/<type>/, 60 s / 5 MB', () => {
    const s = dev();
    s.template.resourceCountIs('AWS::KinesisFirehose::DeliveryStream', 1);
    s.template.hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', {
      DeliveryStreamType: 'DirectPut',
      DeliveryStreamEncryptionConfigurationInput: { KeyType: 'AWS_OWNED_CMK' },
      ExtendedS3DestinationConfiguration: Match.objectLike({
        BucketARN: { 'Fn::GetAtt': [logicalId(s, s.stack.storage.bucket), 'Arn'] },
        Prefix: 'Data/!{timestamp:yyyy/MM/dd/HH}/',
        ErrorOutputPrefix: 'Error/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/',
        BufferingHints: { IntervalInSeconds: 60, SizeInMBs: 5 },
        CompressionFormat: 'GZIP',
      }),
    });
    assert.equal(DATA_OUTPUT_PREFIX, 'Data/!{timestamp:yyyy/MM/dd/HH}/');
    assert.ok(ERROR_OUTPUT_PREFIX.includes('!{firehose:error-output-type}'));
    assert.equal(DELIVERY_BUFFER_INTERVAL.toSeconds(), 60);
    assert.equal(DELIVERY_BUFFER_SIZE.toMebibytes(), 5);
  });

  it('runs the enrich function as processor with a buffer that keeps responses under 6 MB', () => {
    const s = dev();
    const [, stream] = resourcesOfType(s, 'AWS::KinesisFirehose::DeliveryStream')[0];
    const processors = stream.Properties.ExtendedS3DestinationConfiguration.ProcessingConfiguration;
    assert.equal(processors.Enabled, true);
    assert.equal(processors.Processors.length, 1);
    const params = Object.fromEntries(processors.Processors[0].Parameters.map((p: any) => [p.ParameterName, p.ParameterValue]));
    assert.equal(processors.Processors[0].Type, 'Lambda');
    assert.deepStrictEqual(params.LambdaArn, { 'Fn::GetAtt': [fnIds(s).enrich, 'Arn'] });
    // crates/enrich derives 1 MB: worst-case response ≈ 2.2× the request; 3 MB can exceed 6 MB.
    assert.equal(params.BufferSizeInMBs, '1');
    assert.equal(PROCESSOR_BUFFER_SIZE.toMebibytes(), 1);
    assert.ok(Number(params.BufferSizeInMBs) * 2.2 < 6);
  });

  it('logs to its own log group, which has a retention', () => {
    const s = dev();
    const [, stream] = resourcesOfType(s, 'AWS::KinesisFirehose::DeliveryStream')[0];
    const logging = stream.Properties.ExtendedS3DestinationConfiguration.CloudWatchLoggingOptions;
    assert.equal(logging.Enabled, true);
    const groupId = logging.LogGroupName.Ref;
    assert.equal(s.json.Resources[groupId].Type, 'AWS::Logs::LogGroup');
    assert.ok(s.json.Resources[groupId].Properties.RetentionInDays > 0);
    assert.equal(groupId, logicalId(s, s.stack.ingest.logGroup));
  });
});

describe('S3 bucket and fan-out', () => {
  it('is encrypted, private, versioned, logged and TLS-only', () => {
    const s = dev();
    const id = logicalId(s, s.stack.storage.bucket);
    const bucket = s.json.Resources[id].Properties;
    assert.ok(bucket.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm);
    assert.deepStrictEqual(bucket.PublicAccessBlockConfiguration, {
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    assert.equal(bucket.VersioningConfiguration.Status, 'Enabled');
    assert.deepStrictEqual(bucket.LoggingConfiguration.DestinationBucketName, { Ref: logicalId(s, s.stack.storage.accessLogsBucket) });
    s.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: id },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('expires Error/ objects and ages raw Data/ objects', () => {
    const s = synth({ rawDataRetentionDays: '400', errorRetentionDays: '60' });
    const rules = s.json.Resources[logicalId(s, s.stack.storage.bucket)].Properties.LifecycleConfiguration.Rules;
    const byPrefix = (p: string) => rules.find((r: any) => r.Prefix === p);
    assert.equal(byPrefix('Error/').ExpirationInDays, 60);
    assert.equal(byPrefix('Data/').ExpirationInDays, 400);
    assert.equal(byPrefix('Data/').Transitions[0].StorageClass, 'STANDARD_IA');
    assert.ok(rules.some((r: any) => r.AbortIncompleteMultipartUpload));
    assert.equal(byPrefix('State/').ExpirationInDays, 30);
    // Keeping raw data forever: no expiration on Data/.
    const forever = synth({ rawDataRetentionDays: '0' });
    const keep = forever.json.Resources[logicalId(forever, forever.stack.storage.bucket)].Properties.LifecycleConfiguration.Rules;
    assert.equal(keep.find((r: any) => r.Prefix === 'Data/').ExpirationInDays, undefined);
  });

  it('sends bucket events to EventBridge without a custom resource', () => {
    const s = dev();
    const bucket = s.json.Resources[logicalId(s, s.stack.storage.bucket)].Properties;
    assert.deepStrictEqual(bucket.NotificationConfiguration, { EventBridgeConfiguration: { EventBridgeEnabled: true } });
    assert.equal(resourcesOfType(s, 'Custom::S3BucketNotifications').length, 0);
  });

  it('fans new Data/ objects out to one queue per consumer, each with a DLQ and a fitting visibility timeout', () => {
    const s = dev();
    const f = s.stack.functions;
    const bucketId = logicalId(s, s.stack.storage.bucket);
    const consumers = [
      { consumer: f.writerQueue, timeout: WRITER_TIMEOUT, replay: 'Replay/writer/' },
      { consumer: f.forwarderQueue, timeout: FORWARDER_TIMEOUT, replay: 'Replay/forwarder/' },
    ];
    assert.notEqual(logicalId(s, f.writerQueue.queue), logicalId(s, f.forwarderQueue.queue));
    for (const { consumer, timeout, replay } of consumers) {
      const queueId = logicalId(s, consumer.queue);
      const dlqId = logicalId(s, consumer.deadLetterQueue);
      const queue = s.json.Resources[queueId].Properties;
      assert.deepStrictEqual(queue.RedrivePolicy, { deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] }, maxReceiveCount: MAX_RECEIVE_COUNT });
      assert.ok(queue.VisibilityTimeout >= VISIBILITY_TIMEOUT_FACTOR * timeout.toSeconds(), 'visibility ≥ 6× function timeout');
      assert.equal(queue.SqsManagedSseEnabled, true);
      const dlq = s.json.Resources[dlqId].Properties;
      assert.ok(dlq.MessageRetentionPeriod > queue.MessageRetentionPeriod, 'DLQ keeps messages longer than the source');

      const rule = s.json.Resources[logicalId(s, consumer.rule)].Properties;
      assert.deepStrictEqual(rule.EventPattern, {
        source: ['aws.s3'],
        'detail-type': ['Object Created'],
        detail: { bucket: { name: [{ Ref: bucketId }] }, object: { key: [{ prefix: 'Data/' }, { prefix: replay }] } },
      });
      assert.equal(rule.EventBusName, undefined, 'S3 events arrive on the default bus');
      assert.deepStrictEqual(rule.Targets[0].Arn, { 'Fn::GetAtt': [queueId, 'Arn'] });
      assert.deepStrictEqual(rule.Targets[0].DeadLetterConfig.Arn, { 'Fn::GetAtt': [logicalId(s, s.stack.storage.fanOutDeadLetterQueue), 'Arn'] });
    }
  });

  it('makes every queue TLS-only', () => {
    const s = dev();
    const policies = resourcesOfType(s, 'AWS::SQS::QueuePolicy');
    for (const [queueId] of resourcesOfType(s, 'AWS::SQS::Queue')) {
      const policy = policies.find(([, p]) => list(p.Properties.Queues).some((q: any) => q.Ref === queueId));
      assert.ok(policy, `${queueId} has a policy`);
      assert.ok(
        policy[1].Properties.PolicyDocument.Statement.some((st: any) => st.Effect === 'Deny' && st.Condition?.Bool?.['aws:SecureTransport'] === 'false'),
        `${queueId} denies plain HTTP`,
      );
    }
  });
});

describe('Lambda functions', () => {
  it('are provided.al2023 on arm64, each with its own role and a log group with retention', () => {
    const s = dev();
    const ids = Object.values(fnIds(s));
    assert.equal(resourcesOfType(s, 'AWS::Lambda::Function').length, 5);
    const roles = new Set<string>();
    for (const id of ids) {
      const fn = s.json.Resources[id].Properties;
      assert.equal(fn.Runtime, 'provided.al2023');
      assert.deepStrictEqual(fn.Architectures, ['arm64']);
      assert.equal(fn.Handler, 'bootstrap');
      roles.add(fn.Role['Fn::GetAtt'][0]);
      const group = s.json.Resources[fn.LoggingConfig.LogGroup.Ref];
      assert.equal(group.Type, 'AWS::Logs::LogGroup');
      assert.equal(group.Properties.RetentionInDays, 30);
    }
    assert.equal(roles.size, 5, 'one role per function');
  });

  it('keeps the enrich function within Firehose’s 5-minute processor limit', () => {
    const s = dev();
    assert.ok(s.json.Resources[fnIds(s).enrich].Properties.Timeout <= 300);
  });

  it('consume their queues with ReportBatchItemFailures and a concurrency cap', () => {
    const s = synth({ writerMaxConcurrency: '7' });
    const ids = fnIds(s);
    const mappings = resourcesOfType(s, 'AWS::Lambda::EventSourceMapping');
    assert.equal(mappings.length, 2);
    const expected = [
      { fn: ids.writer, queue: logicalId(s, s.stack.functions.writerQueue.queue), max: 7 },
      { fn: ids.forwarder, queue: logicalId(s, s.stack.functions.forwarderQueue.queue), max: 5 },
    ];
    for (const { fn, queue, max } of expected) {
      const [, m] = mappings.find(([, m]) => m.Properties.FunctionName.Ref === fn)!;
      assert.deepStrictEqual(m.Properties.EventSourceArn, { 'Fn::GetAtt': [queue, 'Arn'] });
      assert.deepStrictEqual(m.Properties.FunctionResponseTypes, ['ReportBatchItemFailures']);
      assert.equal(m.Properties.ScalingConfig.MaximumConcurrency, max);
    }
  });

  it('reserve concurrency only when asked', () => {
    const s = dev();
    for (const id of Object.values(fnIds(s))) assert.equal(s.json.Resources[id].Properties.ReservedConcurrentExecutions, undefined);
    const r = synth({ writerReservedConcurrency: '10', queryReservedConcurrency: '3' });
    assert.equal(r.json.Resources[fnIds(r).writer].Properties.ReservedConcurrentExecutions, 10);
    assert.equal(r.json.Resources[fnIds(r).query].Properties.ReservedConcurrentExecutions, 3);
    assert.equal(r.json.Resources[fnIds(r).enrich].Properties.ReservedConcurrentExecutions, undefined);
  });

  it('get the environment their crates document', () => {
    const s = dev();
    const ids = fnIds(s);
    const bucket = { Ref: logicalId(s, s.stack.storage.bucket) };
    assert.deepStrictEqual(env(s, ids.enrich), {
      ENVIRONMENT: 'dev',
      INVALID_RECORD_POLICY: 'fail',
      TENANTS_TABLE: { Ref: logicalId(s, s.stack.tenants.table as any) },
      TENANT_CACHE_TTL_SECS: '300',
      UNKNOWN_TENANT_CACHE_TTL_SECS: '30',
    });
    const writer = env(s, ids.writer);
    assert.equal(writer.METRICS_STORE, 'timestream');
    assert.equal(writer.TIMESTREAM_DATABASE, 'metrics-lake-dev');
    assert.deepStrictEqual(writer.DEAD_LETTER_BUCKET, bucket);
    assert.equal(writer.DEAD_LETTER_PREFIX, 'Error/writer/');
    assert.ok(writer.WRITE_CONCURRENCY);
    assert.equal(writer.MEMORY_RETENTION_HOURS, '336');
    assert.equal(writer.MAGNETIC_RETENTION_DAYS, '365');
    const short = synth({ memoryRetentionHours: '24', magneticRetentionDays: '90' });
    assert.equal(env(short, fnIds(short).writer).MEMORY_RETENTION_HOURS, '24');
    assert.equal(env(short, fnIds(short).writer).MAGNETIC_RETENTION_DAYS, '90');
    const forwarder = env(s, ids.forwarder);
    assert.deepStrictEqual(forwarder.SEGMENT_WRITE_KEY_SECRET_ARN, { Ref: logicalId(s, s.stack.functions.segmentSecret) });
    assert.deepStrictEqual(forwarder.MIXPANEL_SECRET_ARN, { Ref: logicalId(s, s.stack.functions.mixpanelSecret) });
    assert.equal(forwarder.DEAD_LETTER_PREFIX, 'Error/forwarder/');
    assert.equal(forwarder.PROGRESS_PREFIX, 'State/forwarder/');
    assert.deepStrictEqual(forwarder.DEAD_LETTER_BUCKET, bucket);
    assert.equal(forwarder.SEGMENT_ENABLED, 'true');
    assert.equal(forwarder.MIXPANEL_ENABLED, 'true');
    assert.ok(forwarder.FORWARD_CONCURRENCY);
    // Endpoints are the crate's defaults unless configured.
    assert.equal(forwarder.SEGMENT_ENDPOINT, undefined);
    assert.equal(forwarder.MIXPANEL_ENDPOINT, undefined);
    const eu = synth({ segmentEndpoint: 'https://events.eu1.segmentapis.com', mixpanelResidency: 'eu', mixpanelProjectId: '42', forwardToSegment: 'false' });
    const euEnv = env(eu, fnIds(eu).forwarder);
    assert.equal(euEnv.SEGMENT_ENDPOINT, 'https://events.eu1.segmentapis.com');
    assert.equal(euEnv.MIXPANEL_RESIDENCY, 'eu');
    assert.equal(euEnv.MIXPANEL_PROJECT_ID, '42');
    assert.equal(euEnv.SEGMENT_ENABLED, 'false');
    const query = env(s, ids.query);
    assert.equal(query.TENANT_CLAIM, 'custom:tenant_id');
    assert.equal(query.TIMESTREAM_DATABASE, 'metrics-lake-dev');
    assert.deepStrictEqual(query.TENANT_QUERY_ROLE_ARN, { 'Fn::GetAtt': [logicalId(s, s.stack.queryApi.tenantQueryRole!), 'Arn'] });
  });
});

describe('tenant directory', () => {
  it('is a DynamoDB table keyed by tenant_id, with point-in-time recovery', () => {
    const s = dev();
    // The tenant directory and the alerts table.
    s.template.resourceCountIs('AWS::DynamoDB::GlobalTable', 2);
    s.template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      KeySchema: [{ AttributeName: 'tenant_id', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
      Replicas: [Match.objectLike({ PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } })],
    });
  });

  it('can be an existing table, by name', () => {
    const s = synth({ tenantsTableName: 'customers' });
    // Only the alerts table is created.
    s.template.resourceCountIs('AWS::DynamoDB::GlobalTable', 1);
    s.template.hasResourceProperties('AWS::DynamoDB::GlobalTable', { KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }] });
    assert.equal(env(s, fnIds(s).enrich).TENANTS_TABLE, 'customers');
    const statements = s.template.findResources('AWS::IAM::Policy');
    const text = JSON.stringify(statements);
    assert.ok(text.includes(':table/customers'), 'lookup permission on the named table');
  });
});

describe('metrics store', () => {
  it('creates a LiveAnalytics database by default, or uses an existing one', () => {
    dev().template.hasResourceProperties('AWS::Timestream::Database', { DatabaseName: 'metrics-lake-dev' });
    const existing = synth({ timestreamDatabaseName: 'Metrics' });
    existing.template.resourceCountIs('AWS::Timestream::Database', 0);
    assert.equal(env(existing, fnIds(existing).writer).TIMESTREAM_DATABASE, 'Metrics');
    assert.ok(JSON.stringify(existing.template.findResources('AWS::IAM::Policy')).includes(':database/Metrics/table/*'));
  });

  it('is not hard-wired to LiveAnalytics: store=influxdb has no Timestream resource or permission', () => {
    const s = synth(INFLUX_CONTEXT);
    s.template.resourceCountIs('AWS::Timestream::Database', 0);
    assert.ok(!JSON.stringify(s.json).includes('timestream:'), 'no timestream: action anywhere');
    const writer = env(s, fnIds(s).writer);
    assert.equal(writer.METRICS_STORE, 'influxdb');
    assert.equal(writer.INFLUXDB_URL, 'https://abc.timestream-influxdb.us-east-1.on.aws:8181');
    assert.equal(writer.INFLUXDB_API, 'v3');
    assert.equal(writer.INFLUXDB_TOKEN_SECRET_ARN, INFLUX_CONTEXT.influxdbTokenSecretArn);
    assert.equal(writer.INFLUXDB_RETENTION_DAYS, '365');
    assert.equal(writer.INFLUXDB_ORG, undefined);
    assert.equal(s.stack.queryApi.tenantQueryRole, undefined);
  });

  it("store=influxdb gives the query function its own read token's secret, never the writer's", () => {
    const s = synth(INFLUX_CONTEXT);
    const query = env(s, fnIds(s).query);
    assert.equal(query.METRICS_STORE, 'influxdb');
    assert.equal(query.INFLUXDB_URL, INFLUX_CONTEXT.influxdbUrl);
    // The query function refuses anything but v3 at start; the stack passes what it checked.
    assert.equal(query.INFLUXDB_API, 'v3');
    assert.equal(query.INFLUXDB_TOKEN_SECRET_ARN, INFLUX_CONTEXT.influxdbReadTokenSecretArn);
    assert.equal(query.INFLUXDB_ORG, undefined);
    assert.equal(query.INFLUXDB_RETENTION_DAYS, undefined);
    assert.ok(!JSON.stringify(query).includes(INFLUX_CONTEXT.influxdbTokenSecretArn));
  });

  it('store=influxdb runs the writer and query functions in the instance\'s VPC, the others outside', () => {
    const s = synth(INFLUX_CONTEXT);
    const ids = fnIds(s);
    for (const id of [ids.writer, ids.query]) {
      assert.deepStrictEqual(s.json.Resources[id].Properties.VpcConfig, {
        SubnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'],
        SecurityGroupIds: ['sg-0ccccccccccccccc3'],
      });
      const skips = (s.json.Resources[id].Metadata?.checkov?.skip ?? []).map((x: any) => x.id);
      assert.ok(!skips.includes('CKV_AWS_117'), 'no "not in a VPC" exemption for a function in a VPC');
    }
    for (const id of [ids.enrich, ids.forwarder]) assert.equal(s.json.Resources[id].Properties.VpcConfig, undefined);
    for (const id of Object.values(fnIds(dev()))) assert.equal(dev().json.Resources[id].Properties.VpcConfig, undefined);
  });

  it('store=influxdb reaches S3 and Secrets Manager through VPC endpoints, or the VPC\'s own egress when told', () => {
    const s = synth(INFLUX_CONTEXT);
    s.template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcId: 'vpc-0123456789abcdef0',
      ServiceName: 'com.amazonaws.us-east-1.s3',
      VpcEndpointType: 'Gateway',
      RouteTableIds: ['rtb-0ddddddddddddddd4', 'rtb-0eeeeeeeeeeeeeee5'],
    });
    s.template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      ServiceName: 'com.amazonaws.us-east-1.secretsmanager',
      VpcEndpointType: 'Interface',
      PrivateDnsEnabled: true,
      SubnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'],
    });
    s.template.hasResourceProperties('AWS::EC2::SecurityGroup', {
      SecurityGroupIngress: [Match.objectLike({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, SourceSecurityGroupId: 'sg-0ccccccccccccccc3' })],
    });
    const { routeTableIds: _, ...withoutRouteTables } = INFLUX_CONTEXT;
    const own = synth({ ...withoutRouteTables, vpcEndpoints: 'false' });
    own.template.resourceCountIs('AWS::EC2::VPCEndpoint', 0);
    own.template.resourceCountIs('AWS::EC2::SecurityGroup', 0);
    dev().template.resourceCountIs('AWS::EC2::VPCEndpoint', 0);
  });
});

describe('outputs', () => {
  it('name what the deploy guide uses: buckets to empty, dead-letter queues to redrive, secrets, tables', () => {
    const s = dev();
    const outputs = (s.json as any).Outputs as Record<string, { Value: unknown }>;
    const f = s.stack.functions;
    assert.deepStrictEqual(outputs.AccessLogsBucketName.Value, { Ref: logicalId(s, s.stack.storage.accessLogsBucket) });
    assert.deepStrictEqual(outputs.WriterDeadLetterQueueArn.Value, { 'Fn::GetAtt': [logicalId(s, f.writerQueue.deadLetterQueue), 'Arn'] });
    assert.deepStrictEqual(outputs.ForwarderDeadLetterQueueArn.Value, { 'Fn::GetAtt': [logicalId(s, f.forwarderQueue.deadLetterQueue), 'Arn'] });
    for (const key of ['BucketName', 'TenantsTableName', 'QueryApiUrl', 'SegmentSecretArn', 'MixpanelSecretArn', 'UserPoolId', 'UserPoolClientId', 'TimestreamDatabase']) {
      assert.ok(outputs[key], key);
    }
  });
});

describe('store=influxdb VPC endpoints, each on its own', () => {
  const { routeTableIds: _, ...withoutRouteTables } = INFLUX_CONTEXT;
  const endpoints = (s: Synthesized) => resourcesOfType(s, 'AWS::EC2::VPCEndpoint').map(([, e]) => e.Properties);

  it('without the S3 gateway endpoint (the VPC has one for those route tables): only Secrets Manager', () => {
    const s = synth({ ...withoutRouteTables, s3Endpoint: 'false' });
    assert.deepStrictEqual(endpoints(s).map((e) => e.VpcEndpointType), ['Interface']);
  });

  it('without the Secrets Manager endpoint: only the S3 gateway, and no endpoint security group', () => {
    const s = synth({ ...INFLUX_CONTEXT, secretsManagerEndpoint: 'false' });
    assert.deepStrictEqual(endpoints(s).map((e) => e.VpcEndpointType), ['Gateway']);
    s.template.resourceCountIs('AWS::EC2::SecurityGroup', 0);
  });

  it('puts the interface endpoint in its own subnets (one per AZ) when the functions share an AZ', () => {
    const s = synth({ ...INFLUX_CONTEXT, endpointSubnetIds: 'subnet-0fffffffffffffff6' });
    const [secrets] = endpoints(s).filter((e) => e.VpcEndpointType === 'Interface');
    assert.deepStrictEqual(secrets.SubnetIds, ['subnet-0fffffffffffffff6']);
    assert.deepStrictEqual(s.json.Resources[fnIds(s).writer].Properties.VpcConfig.SubnetIds, ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2']);
  });

  it('warns at synth that the interface endpoint needs the VPC DNS attributes', () => {
    const s = synth(INFLUX_CONTEXT);
    const warnings = Annotations.fromStack(s.stack).findWarning('*', Match.stringLikeRegexp('enableDnsSupport and enableDnsHostnames'));
    assert.equal(warnings.length, 1);
    const none = synth({ ...withoutRouteTables, vpcEndpoints: 'false' });
    assert.equal(Annotations.fromStack(none.stack).findWarning('*', Match.stringLikeRegexp('enableDnsHostnames')).length, 0);
  });
});

describe('secrets', () => {
  it('exist for Segment and Mixpanel without any value in the template', () => {
    const s = dev();
    const secrets = resourcesOfType(s, 'AWS::SecretsManager::Secret');
    assert.equal(secrets.length, 2);
    for (const [, secret] of secrets) {
      assert.equal(secret.Properties.SecretString, undefined);
      // Placeholder with the documented shape and empty fields, which the forwarder refuses.
      const template = JSON.parse(secret.Properties.GenerateSecretString.SecretStringTemplate);
      assert.ok(Object.values(template).every((v) => v === ''));
    }
    const templates = secrets.map(([, x]) => Object.keys(JSON.parse(x.Properties.GenerateSecretString.SecretStringTemplate)).sort().join(','));
    assert.deepStrictEqual(templates.sort(), ['project_id,service_account_secret,service_account_username', 'write_key']);
  });
});

describe('observability', () => {
  it('alarms on every dead-letter queue', () => {
    const s = dev();
    const alarms = resourcesOfType(s, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    const dlqs = [
      s.stack.ingest.deadLetterQueue,
      s.stack.storage.fanOutDeadLetterQueue,
      s.stack.functions.writerQueue.deadLetterQueue,
      s.stack.functions.forwarderQueue.deadLetterQueue,
    ];
    // Every queue that is some queue's DLQ, or a rule target's DLQ, is among them.
    const referenced = new Set<string>();
    for (const [, q] of resourcesOfType(s, 'AWS::SQS::Queue')) if (q.Properties.RedrivePolicy) referenced.add(q.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0]);
    // (The alert schedule's target has none: a missed run is made good by the next one.)
    for (const [, r] of resourcesOfType(s, 'AWS::Events::Rule'))
      for (const t of r.Properties.Targets) if (t.DeadLetterConfig) referenced.add(t.DeadLetterConfig.Arn['Fn::GetAtt'][0]);
    assert.deepStrictEqual([...referenced].sort(), dlqs.map((q) => logicalId(s, q)).sort());
    for (const dlq of dlqs) {
      const name = { 'Fn::GetAtt': [logicalId(s, dlq), 'QueueName'] };
      assert.ok(
        alarms.some((a) => a.MetricName === 'ApproximateNumberOfMessagesVisible' && JSON.stringify(a.Dimensions) === JSON.stringify([{ Name: 'QueueName', Value: name }]) && a.Threshold === 0),
        `${dlq.node.path} has a depth alarm`,
      );
    }
  });

  it('alarms on Firehose processing and delivery, function errors and throttles, queue age and rule failures', () => {
    const s = dev();
    const alarms = resourcesOfType(s, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    const has = (metric: string, dimension?: unknown) =>
      alarms.some((a) => a.MetricName === metric && (dimension === undefined || JSON.stringify(a.Dimensions).includes(JSON.stringify(dimension))));
    assert.ok(has('ExecuteProcessing.Success'));
    assert.ok(has('DeliveryToS3.Success'));
    assert.ok(has('DeliveryToS3.DataFreshness'));
    for (const id of Object.values(fnIds(s))) {
      assert.ok(has('Errors', { Ref: id }), `Errors alarm for ${id}`);
      assert.ok(has('Throttles', { Ref: id }), `Throttles alarm for ${id}`);
    }
    for (const q of [s.stack.functions.writerQueue.queue, s.stack.functions.forwarderQueue.queue]) {
      assert.ok(has('ApproximateAgeOfOldestMessage', { 'Fn::GetAtt': [logicalId(s, q), 'QueueName'] }));
    }
    const ruleAlarm = alarms.find((a) => a.Metrics?.some((m: any) => m.MetricStat?.Metric.MetricName === 'FailedInvocations'));
    assert.ok(ruleAlarm, 'failed rule invocations alarm');
    const covered = ruleAlarm.Metrics.filter((m: any) => m.MetricStat).length;
    assert.equal(covered, Math.min(10, s.stack.ingest.rules.length));
    s.template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });

  it('notifies an alarm topic when configured, and only then', () => {
    const none = dev();
    for (const [, a] of resourcesOfType(none, 'AWS::CloudWatch::Alarm')) assert.equal(a.Properties.AlarmActions, undefined);
    none.template.resourceCountIs('AWS::SNS::Topic', 0);

    const email = prod();
    email.template.resourceCountIs('AWS::SNS::Topic', 1);
    email.template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'alarms@example.com' });
    const [topicId] = resourcesOfType(email, 'AWS::SNS::Topic')[0];
    for (const [, a] of resourcesOfType(email, 'AWS::CloudWatch::Alarm')) assert.deepStrictEqual(a.Properties.AlarmActions, [{ Ref: topicId }]);

    // The topic policy that enforceSSL writes replaces SNS's default: CloudWatch must be allowed.
    const [, topicPolicy] = resourcesOfType(email, 'AWS::SNS::TopicPolicy')[0];
    const statements = topicPolicy.Properties.PolicyDocument.Statement;
    const publish = statements.filter((st: any) => st.Effect === 'Allow' && list(st.Action).includes('sns:Publish'));
    assert.equal(publish.length, 1);
    assert.deepStrictEqual(publish[0].Principal, { Service: 'cloudwatch.amazonaws.com' });
    assert.deepStrictEqual(publish[0].Resource, { Ref: topicId });
    assert.deepStrictEqual(publish[0].Condition, { StringEquals: { 'aws:SourceAccount': '111111111111' } });
    assert.ok(statements.some((st: any) => st.Effect === 'Deny' && st.Condition?.Bool?.['aws:SecureTransport'] === 'false'), 'TLS only');

    const arn = 'arn:aws:sns:us-east-1:111111111111:ops';
    const existing = synth({ alarmTopicArn: arn });
    existing.template.resourceCountIs('AWS::SNS::Topic', 0);
    for (const [, a] of resourcesOfType(existing, 'AWS::CloudWatch::Alarm')) assert.deepStrictEqual(a.Properties.AlarmActions, [arn]);
  });
});

describe('stages', () => {
  const stateful = ['AWS::S3::Bucket', 'AWS::DynamoDB::GlobalTable', 'AWS::Timestream::Database', 'AWS::SecretsManager::Secret', 'AWS::Logs::LogGroup'];

  it('retains data in prod on update and delete, but not after a failed first create', () => {
    const s = prod();
    for (const type of stateful) {
      for (const [id, r] of resourcesOfType(s, type)) {
        // Plain Retain would leave the named database behind a failed create, and the next
        // deploy would fail with "already exists".
        assert.equal((r as any).DeletionPolicy, 'RetainExceptOnCreate', `${type} ${id}`);
        assert.equal((r as any).UpdateReplacePolicy, 'Retain', `${type} ${id}`);
      }
    }
    const [, database] = resourcesOfType(s, 'AWS::Timestream::Database')[0];
    assert.equal(database.Properties.DatabaseName, 'metrics-lake-prod');
    assert.equal((database as any).DeletionPolicy, 'RetainExceptOnCreate');
    assert.ok(!Object.values(s.json.Resources).some((r: any) => r.DeletionPolicy === 'Retain'), 'no plain Retain anywhere');
    s.template.hasResourceProperties('AWS::Cognito::UserPool', { DeletionProtection: 'ACTIVE' });
    s.template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      Replicas: [Match.objectLike({ DeletionProtectionEnabled: true })],
    });
    assert.equal(s.stack.stackName, 'metrics-lake-prod');
    assert.equal(s.json.Resources[fnIds(s).enrich].Properties.Environment.Variables.ENVIRONMENT, 'prod');
    const groups = resourcesOfType(s, 'AWS::Logs::LogGroup');
    for (const [, g] of groups) assert.equal(g.Properties.RetentionInDays, 365);
  });

  it('cleans up in dev', () => {
    const s = dev();
    for (const type of stateful) {
      for (const [id, r] of resourcesOfType(s, type)) assert.equal((r as any).DeletionPolicy, 'Delete', `${type} ${id}`);
    }
  });
});
