// The whole pipeline in one stack, composed of small constructs (lib/constructs/).

import { Annotations, CfnOutput, RemovalPolicy, Stack, StackProps, Tags, Validations } from 'aws-cdk-lib';
import * as cxapi from 'aws-cdk-lib/cx-api';
import * as events from 'aws-cdk-lib/aws-events';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { MetricsLakeSettings } from './config';
import { Alerts } from './constructs/alerts';
import { Functions } from './constructs/functions';
import { Ingest } from './constructs/ingest';
import { Observability } from './constructs/observability';
import { QueryApi } from './constructs/query-api';
import { ReplayOperator } from './constructs/replay-operator';
import { Storage } from './constructs/storage';
import { MetricsStore } from './constructs/store';
import { TenantDirectory } from './constructs/tenant-directory';
import { loadRules, type RenderedRule } from './rules';

export interface MetricsLakeStackProps extends StackProps {
  readonly settings: MetricsLakeSettings;
  /** Rules to deploy; default: loaded from `settings.rulesFile`. */
  readonly rules?: RenderedRule[];
}

export class MetricsLakeStack extends Stack {
  public readonly settings: MetricsLakeSettings;
  public readonly storage: Storage;
  public readonly tenants: TenantDirectory;
  public readonly store: MetricsStore;
  public readonly functions: Functions;
  public readonly ingest: Ingest;
  public readonly queryApi: QueryApi;
  public readonly alerts: Alerts;
  public readonly observability: Observability;
  public readonly replayOperator: ReplayOperator;
  public readonly eventBus?: events.EventBus;

  constructor(scope: Construct, id: string, props: MetricsLakeStackProps) {
    super(scope, id, props);
    const settings = props.settings;
    this.settings = settings;
    // Server access logs are delivered under a bucket policy, not the LogDeliveryWrite ACL
    // (ACLs stay disabled on every bucket).
    this.node.setContext('@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy', true);
    if (settings.skipBundling) {
      // Tests and offline checks: no cargo-lambda, no Rust build (must precede any asset).
      this.node.setContext(cxapi.BUNDLING_STACKS, []);
    }

    const prod = settings.stage === 'prod';
    const name = `metrics-lake-${settings.stage}`;
    // Data survives `cdk destroy` and replacements in prod; dev stacks clean up after
    // themselves. Not plain Retain: a failed first create would leave the named database (and
    // the rest) behind, and the next deploy would fail with "already exists". RetainExceptOnCreate
    // deletes what a failed create made:
    // https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html
    const dataRemoval = prod ? RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE : RemovalPolicy.DESTROY;
    const logRetention = prod ? logs.RetentionDays.ONE_YEAR : logs.RetentionDays.ONE_MONTH;
    Tags.of(this).add('project', 'metrics-lake');
    Tags.of(this).add('stage', settings.stage);

    const rules = props.rules ?? loadRules(settings.rulesFile);

    this.tenants = new TenantDirectory(this, 'Tenants', {
      existingTableName: settings.tenantsTableName,
      removalPolicy: dataRemoval,
      deletionProtection: prod,
    });
    this.store = new MetricsStore(this, 'Store', {
      kind: settings.store,
      databaseName: settings.timestreamDatabaseName ?? name,
      existingDatabase: settings.timestreamDatabaseName !== undefined,
      influxdb: settings.influxdb,
      influxdbRetentionDays: settings.magneticRetentionDays,
      removalPolicy: dataRemoval,
    });
    this.storage = new Storage(this, 'Storage', {
      removalPolicy: dataRemoval,
      rawDataRetentionDays: settings.rawDataRetentionDays,
      errorRetentionDays: settings.errorRetentionDays,
    });
    this.functions = new Functions(this, 'Functions', {
      settings,
      storage: this.storage,
      tenants: this.tenants,
      store: this.store,
      logRetention,
      removalPolicy: dataRemoval,
    });

    let bus: events.IEventBus | undefined;
    let busName: string | undefined;
    if (settings.createEventBus) {
      this.eventBus = new events.EventBus(this, 'Bus', { eventBusName: name });
      bus = this.eventBus;
      busName = name;
    } else if (settings.eventBusName) {
      bus = events.EventBus.fromEventBusName(this, 'Bus', settings.eventBusName);
      busName = settings.eventBusName;
    }
    this.ingest = new Ingest(this, 'Ingest', {
      rules,
      eventBus: bus,
      eventBusName: busName,
      rulesEnabled: settings.rulesEnabled,
      bucket: this.storage.bucket,
      enrichFunction: this.functions.enrich,
      logRetention,
      removalPolicy: dataRemoval,
    });

    this.queryApi = new QueryApi(this, 'Query', {
      queryFunction: this.functions.query,
      store: this.store,
      jwtIssuer: settings.jwtIssuer,
      jwtAudience: settings.jwtAudience,
      tenantClaim: settings.tenantClaim,
      corsOrigins: settings.queryCorsOrigins,
      logRetention,
      removalPolicy: dataRemoval,
    });

    this.alerts = new Alerts(this, 'Alerts', {
      settings,
      store: this.store,
      queryApi: this.queryApi,
      queryFunction: this.functions.query,
      logRetention,
      removalPolicy: dataRemoval,
      deletionProtection: prod,
    });

    const fns = this.functions;
    this.observability = new Observability(this, 'Observability', {
      dashboardName: name,
      alarmEmail: settings.alarmEmail,
      alarmTopicArn: settings.alarmTopicArn,
      deadLetterQueues: [
        { name: 'RulesDlq', queue: this.ingest.deadLetterQueue },
        { name: 'FanOutDlq', queue: this.storage.fanOutDeadLetterQueue },
        { name: 'WriterDlq', queue: fns.writerQueue.deadLetterQueue },
        { name: 'ForwarderDlq', queue: fns.forwarderQueue.deadLetterQueue },
      ],
      consumerQueues: [
        { name: 'WriterQueue', queue: fns.writerQueue.queue },
        { name: 'ForwarderQueue', queue: fns.forwarderQueue.queue },
      ],
      functions: [
        { name: 'Enrich', fn: fns.enrich },
        { name: 'Writer', fn: fns.writer },
        { name: 'Forwarder', fn: fns.forwarder },
        { name: 'Query', fn: fns.query },
        { name: 'AlertEvaluator', fn: this.alerts.evaluator },
      ],
      failureCounts: [
        {
          name: 'AlertDeadLetters',
          metric: this.alerts.deadLettered,
          description: "Alert notifications were dead lettered (the receiver refused or kept failing; see the alert's /events)",
        },
        {
          name: 'AlertReadFailures',
          metric: this.alerts.readFailures,
          description: "Alert windows could not be read from the store (the alerts stay due and are retried next minute)",
        },
      ],
      deliveryStream: this.ingest.deliveryStream,
      rules: this.ingest.rules,
    });

    // What `metrics-lake errors` and `replay --bucket` need, for an operator to attach.
    this.replayOperator = new ReplayOperator(this, 'ReplayOperator', {
      bucket: this.storage.bucket,
      deliveryStream: this.ingest.deliveryStream,
      tenantsTable: this.tenants.table,
      alertsTable: this.alerts.table,
      queueDeadLetterQueues: [
        { dlq: fns.writerQueue.deadLetterQueue, sources: [fns.writerQueue.queue] },
        { dlq: fns.forwarderQueue.deadLetterQueue, sources: [fns.forwarderQueue.queue] },
      ],
      targetDeadLetterQueues: [
        { dlq: this.storage.fanOutDeadLetterQueue, targets: [fns.writerQueue.queue, fns.forwarderQueue.queue] },
        { dlq: this.ingest.deadLetterQueue, targets: [] },
      ],
    });

    // Environment-agnostic synths only (tests without a region): aws-kinesisfirehose adds a
    // per-region CIDR mapping that only some destinations (not S3) reference.
    Validations.of(this).acknowledge({ id: 'CloudFormation-Validate::W7001', reason: 'unused aws-kinesisfirehose CIDR mapping' });

    if (settings.store === 'timestream') {
      Annotations.of(this).addInfo(
        'store=timestream: Timestream for LiveAnalytics accepts only accounts that used it before 20 June 2025; other accounts deploy with -c store=influxdb.',
      );
    }

    new CfnOutput(this, 'BucketName', { value: this.storage.bucket.bucketName });
    new CfnOutput(this, 'AccessLogsBucketName', { value: this.storage.accessLogsBucket.bucketName });
    new CfnOutput(this, 'DeliveryStreamName', { value: this.ingest.deliveryStream.deliveryStreamName });
    new CfnOutput(this, 'TenantsTableName', { value: this.tenants.table.tableName });
    new CfnOutput(this, 'QueryApiUrl', { value: this.queryApi.url });
    new CfnOutput(this, 'SegmentSecretArn', { value: fns.segmentSecret.secretArn });
    new CfnOutput(this, 'MixpanelSecretArn', { value: fns.mixpanelSecret.secretArn });
    // For `metrics-lake replay --bucket … --redrive <arn>` (docs/recovery.md).
    new CfnOutput(this, 'WriterDeadLetterQueueArn', { value: fns.writerQueue.deadLetterQueue.queueArn });
    new CfnOutput(this, 'ForwarderDeadLetterQueueArn', { value: fns.forwarderQueue.deadLetterQueue.queueArn });
    new CfnOutput(this, 'RulesDeadLetterQueueArn', { value: this.ingest.deadLetterQueue.queueArn });
    new CfnOutput(this, 'FanOutDeadLetterQueueArn', { value: this.storage.fanOutDeadLetterQueue.queueArn });
    new CfnOutput(this, 'ReplayOperatorPolicyArn', { value: this.replayOperator.policy.managedPolicyArn });
    new CfnOutput(this, 'DashboardName', { value: name });
    new CfnOutput(this, 'AlertsTableName', { value: this.alerts.table.tableName });
    if (this.store.databaseName) new CfnOutput(this, 'TimestreamDatabase', { value: this.store.databaseName });
    if (this.queryApi.userPool) {
      new CfnOutput(this, 'UserPoolId', { value: this.queryApi.userPool.userPoolId });
      new CfnOutput(this, 'UserPoolClientId', { value: this.queryApi.userPoolClient!.userPoolClientId });
    }
    if (this.eventBus) new CfnOutput(this, 'EventBusName', { value: this.eventBus.eventBusName });
  }
}
