// The four Rust functions, each with its own role granted only what it calls, and the
// forwarder's Secrets Manager secrets. Environment names are the crates' contracts
// (crates/*/src/config.rs).

import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { MetricsLakeSettings } from '../config';
import { REASONS, skipCfnLint, skipCheckov } from '../suppressions';
import { RustFunction } from './rust-function';
import type { MetricsStore } from './store';
import { DATA_PREFIX, FORWARDER_REPLAY_PREFIX, WRITER_REPLAY_PREFIX, type ConsumerQueue, type Storage } from './storage';
import type { TenantDirectory } from './tenant-directory';

export const WRITER_DEAD_LETTER_PREFIX = 'Error/writer/';
export const FORWARDER_DEAD_LETTER_PREFIX = 'Error/forwarder/';
/** Firehose waits at most 5 minutes for a processor. */
export const ENRICH_TIMEOUT = Duration.minutes(2);
export const WRITER_TIMEOUT = Duration.minutes(5);
export const FORWARDER_TIMEOUT = Duration.minutes(5);
export const QUERY_TIMEOUT = Duration.seconds(29);
/** SQS event sources: objects per invocation, and how long to gather them. */
export const CONSUMER_BATCH_SIZE = 10;
export const CONSUMER_BATCHING_WINDOW = Duration.seconds(5);
/** Per-destination completion markers (crates/forwarder `PROGRESS_PREFIX`). */
export const FORWARDER_PROGRESS_PREFIX = 'State/forwarder/';

export interface FunctionsProps {
  readonly settings: MetricsLakeSettings;
  readonly storage: Storage;
  readonly tenants: TenantDirectory;
  readonly store: MetricsStore;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

export class Functions extends Construct {
  public readonly enrich: lambda.Function;
  public readonly writer: lambda.Function;
  public readonly forwarder: lambda.Function;
  public readonly query: lambda.Function;
  public readonly writerQueue: ConsumerQueue;
  public readonly forwarderQueue: ConsumerQueue;
  public readonly segmentSecret: secretsmanager.Secret;
  public readonly mixpanelSecret: secretsmanager.Secret;

  constructor(scope: Construct, id: string, props: FunctionsProps) {
    super(scope, id);
    const { settings, storage, tenants, store } = props;
    const bucket = storage.bucket;
    const common = {
      logRetention: props.logRetention,
      removalPolicy: props.removalPolicy,
      codeSource: settings.lambdaCode,
      workspaceRoot: settings.workspaceRoot,
    };

    // --- enrich: Firehose processor ------------------------------------------------------
    this.enrich = new RustFunction(this, 'Enrich', {
      ...common,
      binary: 'metrics-enrich',
      description: 'Firehose processor: validates and enriches metric events',
      memorySize: 256,
      timeout: ENRICH_TIMEOUT,
      reservedConcurrency: settings.reservedConcurrency.enrich,
      environment: {
        ENVIRONMENT: settings.stage,
        INVALID_RECORD_POLICY: 'fail',
        TENANTS_TABLE: tenants.table.tableName,
        TENANT_CACHE_TTL_SECS: '300',
        UNKNOWN_TENANT_CACHE_TTL_SECS: '30',
      },
    }).function;
    tenants.grantLookup(this.enrich);

    // --- writer: S3 objects → store --------------------------------------------------------
    this.writerQueue = storage.addConsumer('Writer', WRITER_TIMEOUT, CONSUMER_BATCHING_WINDOW, WRITER_REPLAY_PREFIX);
    this.writer = new RustFunction(this, 'Writer', {
      ...common,
      binary: 'metrics-writer',
      description: 'Writes enriched metric events from S3 into the per-tenant store tables',
      memorySize: 512,
      timeout: WRITER_TIMEOUT,
      reservedConcurrency: settings.reservedConcurrency.writer,
      environment: {
        ...store.writerEnvironment(),
        WRITE_CONCURRENCY: '16',
        MEMORY_RETENTION_HOURS: String(settings.memoryRetentionHours),
        MAGNETIC_RETENTION_DAYS: String(settings.magneticRetentionDays),
        DEAD_LETTER_BUCKET: bucket.bucketName,
        DEAD_LETTER_PREFIX: WRITER_DEAD_LETTER_PREFIX,
      },
    }).function;
    grantObjects(this.writer, bucket, WRITER_DEAD_LETTER_PREFIX, WRITER_REPLAY_PREFIX);
    store.grantWrite(this.writer);
    store.placeFunction(this.writer);
    consumeQueue(this.writer, this.writerQueue, settings.writerMaxConcurrency);

    // --- forwarder: S3 objects → Segment, Mixpanel -----------------------------------------
    // The operator sets the values (README). Until then each secret holds the documented
    // shape with empty fields, which the forwarder refuses loudly (a credentials error and a
    // retry), instead of sending events with a made-up key.
    this.segmentSecret = new secretsmanager.Secret(this, 'SegmentWriteKey', {
      description: 'Segment source write key for metrics-lake: {"write_key": "..."} (set after deploying)',
      generateSecretString: placeholder({ write_key: '' }),
      removalPolicy: props.removalPolicy,
    });
    this.mixpanelSecret = new secretsmanager.Secret(this, 'MixpanelCredentials', {
      description:
        'Mixpanel credentials for metrics-lake: {"project_id", "service_account_username", "service_account_secret"} or {"project_token"} (set after deploying)',
      generateSecretString: placeholder({ project_id: '', service_account_username: '', service_account_secret: '' }),
      removalPolicy: props.removalPolicy,
    });
    for (const secret of [this.segmentSecret, this.mixpanelSecret]) {
      skipCheckov(
        secret,
        { id: 'CKV_AWS_149', reason: REASONS.awsManagedEncryption },
        {
          id: 'CKV2_AWS_57',
          reason: 'Third-party API credentials: they are rotated in the Segment/Mixpanel consoles and set here by the operator; there is no rotation Lambda for them.',
        },
      );
    }
    this.forwarderQueue = storage.addConsumer('Forwarder', FORWARDER_TIMEOUT, CONSUMER_BATCHING_WINDOW, FORWARDER_REPLAY_PREFIX);
    this.forwarder = new RustFunction(this, 'Forwarder', {
      ...common,
      binary: 'metrics-forwarder',
      description: 'Forwards enriched metric events from S3 to Segment and Mixpanel',
      memorySize: 256,
      timeout: FORWARDER_TIMEOUT,
      reservedConcurrency: settings.reservedConcurrency.forwarder,
      environment: {
        SEGMENT_WRITE_KEY_SECRET_ARN: this.segmentSecret.secretArn,
        MIXPANEL_SECRET_ARN: this.mixpanelSecret.secretArn,
        SEGMENT_ENABLED: String(settings.forwardToSegment),
        MIXPANEL_ENABLED: String(settings.forwardToMixpanel),
        ...(settings.segmentEndpoint ? { SEGMENT_ENDPOINT: settings.segmentEndpoint } : {}),
        ...(settings.mixpanelResidency ? { MIXPANEL_RESIDENCY: settings.mixpanelResidency } : {}),
        ...(settings.mixpanelProjectId ? { MIXPANEL_PROJECT_ID: settings.mixpanelProjectId } : {}),
        FORWARD_CONCURRENCY: '4',
        DEAD_LETTER_BUCKET: bucket.bucketName,
        DEAD_LETTER_PREFIX: FORWARDER_DEAD_LETTER_PREFIX,
        PROGRESS_PREFIX: FORWARDER_PROGRESS_PREFIX,
      },
    }).function;
    iam.Grant.addToPrincipal({
      grantee: this.forwarder,
      actions: ['s3:GetObject'],
      resourceArns: [bucket.arnForObjects(`${DATA_PREFIX}*`), bucket.arnForObjects(`${FORWARDER_REPLAY_PREFIX}*`)],
    });
    // As crates/forwarder/README.md lists: GetObject and PutObject on the dead-letter and
    // progress prefixes (markers are checked with HeadObject, which needs GetObject), and
    // ListBucket limited to the progress prefix, so a missing marker is a 404, not a 403.
    iam.Grant.addToPrincipal({
      grantee: this.forwarder,
      actions: ['s3:GetObject', 's3:PutObject'],
      resourceArns: [bucket.arnForObjects(`${FORWARDER_DEAD_LETTER_PREFIX}*`), bucket.arnForObjects(`${FORWARDER_PROGRESS_PREFIX}*`)],
    });
    grantAbortDeadLetterUploads(this.forwarder, bucket, FORWARDER_DEAD_LETTER_PREFIX);
    this.forwarder.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${FORWARDER_PROGRESS_PREFIX}*`] } },
      }),
    );
    for (const secret of [this.segmentSecret, this.mixpanelSecret]) {
      iam.Grant.addToPrincipal({
        grantee: this.forwarder,
        actions: ['secretsmanager:GetSecretValue'],
        resourceArns: [secret.secretArn],
      });
    }
    consumeQueue(this.forwarder, this.forwarderQueue, settings.forwarderMaxConcurrency);

    // --- query: HTTP API (permissions come from QueryApi) -----------------------------------
    this.query = new RustFunction(this, 'Query', {
      ...common,
      binary: 'metrics-query',
      description: "Tenant query API: charts one tenant's metrics, for the caller's tenant only",
      memorySize: 256,
      timeout: QUERY_TIMEOUT,
      reservedConcurrency: settings.reservedConcurrency.query,
      environment: { ...store.queryEnvironment() },
    }).function;
    store.placeFunction(this.query);
  }
}

/**
 * SQS event source with partial batch responses: the function reports failed messages in
 * `batchItemFailures`, and only those return to the queue (then its DLQ after
 * MAX_RECEIVE_COUNT receives). Without ReportBatchItemFailures a returned list is ignored
 * and the whole batch is deleted.
 */
function consumeQueue(fn: lambda.Function, consumer: ConsumerQueue, maxConcurrency: number): void {
  const source = new SqsEventSource(consumer.queue, {
    batchSize: CONSUMER_BATCH_SIZE,
    maxBatchingWindow: CONSUMER_BATCHING_WINDOW,
    reportBatchItemFailures: true,
    maxConcurrency,
  });
  fn.addEventSource(source);
  const mapping = fn.node.findAll().find(
    (c): c is lambda.CfnEventSourceMapping => c instanceof lambda.CfnEventSourceMapping && c.eventSourceArn === consumer.queue.queueArn,
  );
  if (!mapping) throw new Error(`no event source mapping for ${consumer.queue.node.path}`);
  skipCfnLint(mapping, {
    id: 'ES1001',
    reason: 'SQS event source mappings take no OnFailure destination (streams and Kafka only); failed messages go to the queue\'s redrive DLQ.',
  });
}

/** Read `Data/` and `replayPrefix` objects, write dead letters under `deadLetterPrefix`; nothing else in the bucket (the writer). */
function grantObjects(fn: lambda.Function, bucket: s3.IBucket, deadLetterPrefix: string, replayPrefix: string): void {
  iam.Grant.addToPrincipal({
    grantee: fn,
    actions: ['s3:GetObject'],
    resourceArns: [bucket.arnForObjects(`${DATA_PREFIX}*`), bucket.arnForObjects(`${replayPrefix}*`)],
  });
  iam.Grant.addToPrincipal({ grantee: fn, actions: ['s3:PutObject'], resourceArns: [bucket.arnForObjects(`${deadLetterPrefix}*`)] });
  grantAbortDeadLetterUploads(fn, bucket, deadLetterPrefix);
}

/**
 * Many dead letters are streamed as a multipart upload (crates/objects/src/dead_letter.rs).
 * s3:PutObject covers creating, uploading parts and completing it; abandoning one when the
 * object is retried needs s3:AbortMultipartUpload:
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions
 */
function grantAbortDeadLetterUploads(fn: lambda.Function, bucket: s3.IBucket, deadLetterPrefix: string): void {
  iam.Grant.addToPrincipal({ grantee: fn, actions: ['s3:AbortMultipartUpload'], resourceArns: [bucket.arnForObjects(`${deadLetterPrefix}*`)] });
}

/** A generated secret whose text is `fields` plus a random `unset` field: no value in the template. */
export function placeholder(fields: Record<string, string>): secretsmanager.SecretStringGenerator {
  return { secretStringTemplate: JSON.stringify(fields), generateStringKey: 'unset', excludePunctuation: true, passwordLength: 16 };
}
