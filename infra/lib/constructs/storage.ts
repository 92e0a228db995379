// The data bucket and the fan-out of its new `Data/` objects to one SQS queue per consumer.
//
// Layout (written by Firehose, read by the writer and forwarder):
//   Data/YYYY/MM/DD/HH/<stream>-…gz                     enriched events, one JSON line each
//   Error/processing-failed/YYYY/MM/DD/HH/…              records the enrich function failed
//   Error/writer/…, Error/forwarder/…                    the consumers' dead letters
//   Replay/writer/…, Replay/forwarder/<destination>/…    records `metrics-lake replay` sends
//                                                        back to one consumer
//   Replayed/Error/…                                     marks of replayed error objects
//
// S3 allows only one notification destination per overlapping prefix, so the bucket sends its
// events to EventBridge and one rule per consumer forwards `Object Created` under `Data/` (and
// under the consumer's own replay prefix) to that consumer's queue (each with its own DLQ).

import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { REASONS, skipCfnLint, skipCheckov } from '../suppressions';

export const DATA_PREFIX = 'Data/';
export const ERROR_PREFIX = 'Error/';
/** Objects `metrics-lake replay` writes for one consumer (crates/objects/src/key.rs). */
export const REPLAY_PREFIX = 'Replay/';
export const WRITER_REPLAY_PREFIX = 'Replay/writer/';
export const FORWARDER_REPLAY_PREFIX = 'Replay/forwarder/';
/** Marks `metrics-lake replay` leaves beside the error objects it replayed. */
export const REPLAYED_PREFIX = 'Replayed/';
/** Small state objects (the forwarder's completion markers). */
export const STATE_PREFIX = 'State/';
/** Markers matter while a message can still be redelivered (queue 4 days, DLQ 14 days). */
export const STATE_RETENTION = Duration.days(30);

/** Lambda's guidance: visibility timeout at least 6× the function timeout. */
export const VISIBILITY_TIMEOUT_FACTOR = 6;
/** Receives before a message moves to the DLQ (Lambda's guidance: at least 5). */
export const MAX_RECEIVE_COUNT = 5;
/** SQS maximum; DLQ retention must exceed the source queue's (expiry counts from the first enqueue). */
export const DLQ_RETENTION = Duration.days(14);
export const QUEUE_RETENTION = Duration.days(4);

export interface ConsumerQueue {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly rule: events.Rule;
}

export interface StorageProps {
  readonly removalPolicy: RemovalPolicy;
  /** Days raw `Data/` objects are kept (0 = forever). */
  readonly rawDataRetentionDays: number;
  readonly errorRetentionDays: number;
}

export class Storage extends Construct {
  public readonly bucket: s3.Bucket;
  public readonly accessLogsBucket: s3.Bucket;
  /** Receives S3 events the fan-out rules could not deliver to a consumer queue. */
  public readonly fanOutDeadLetterQueue: sqs.Queue;
  private readonly consumers = new Map<string, ConsumerQueue>();

  constructor(scope: Construct, id: string, private readonly props: StorageProps) {
    super(scope, id);

    this.accessLogsBucket = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      lifecycleRules: [
        { id: 'expire-access-logs', expiration: Duration.days(90), noncurrentVersionExpiration: Duration.days(7) },
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ],
      removalPolicy: props.removalPolicy,
    });
    skipCheckov(this.accessLogsBucket, {
      id: 'CKV_AWS_18',
      reason: 'This is the server access log bucket; logging it into itself would log its own log deliveries.',
    });

    const keepRawData = props.rawDataRetentionDays > 0 ? Duration.days(props.rawDataRetentionDays) : undefined;
    // Consumers read an object within minutes; after 30 days it is read only on replay. S3
    // rejects a transition that is not earlier than the expiration.
    const rawDataToInfrequentAccess = !keepRawData || props.rawDataRetentionDays > 30;
    const lifecycleRules: s3.LifecycleRule[] = [
      {
        id: 'errors',
        prefix: ERROR_PREFIX,
        expiration: Duration.days(props.errorRetentionDays),
        noncurrentVersionExpiration: Duration.days(7),
      },
      {
        id: 'raw-data',
        prefix: DATA_PREFIX,
        transitions: rawDataToInfrequentAccess
          ? [{ storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(30) }]
          : undefined,
        expiration: keepRawData,
        noncurrentVersionExpiration: Duration.days(7),
      },
      // Replay objects and marks matter as long as the errors they come from.
      {
        id: 'replays',
        prefix: REPLAY_PREFIX,
        expiration: Duration.days(props.errorRetentionDays),
        noncurrentVersionExpiration: Duration.days(7),
      },
      {
        id: 'replay-marks',
        prefix: REPLAYED_PREFIX,
        expiration: Duration.days(props.errorRetentionDays),
        noncurrentVersionExpiration: Duration.days(7),
      },
      { id: 'state', prefix: STATE_PREFIX, expiration: STATE_RETENTION, noncurrentVersionExpiration: Duration.days(1) },
      { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
    ];

    this.bucket = new s3.Bucket(this, 'Data', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'data-bucket/',
      eventBridgeEnabled: false,
      lifecycleRules,
      removalPolicy: props.removalPolicy,
    });
    skipCheckov(this.bucket, { id: 'CKV_AWS_145', reason: REASONS.awsManagedEncryption });
    skipCheckov(this.accessLogsBucket, { id: 'CKV_AWS_145', reason: 'S3 server access logging delivers only to SSE-S3 buckets.' });
    // Without the BucketNotifications custom resource (a Lambda of its own): set
    // EventBridge delivery on the bucket resource directly.
    (this.bucket.node.defaultChild as s3.CfnBucket).notificationConfiguration = {
      eventBridgeConfiguration: { eventBridgeEnabled: true },
    };

    this.fanOutDeadLetterQueue = newQueue(this, 'FanOutDlq', { retentionPeriod: DLQ_RETENTION });
  }

  /**
   * A queue that receives an `Object Created` event for every new object under `Data/` and
   * under `replayPrefix` (what a replay sends this consumer alone), with its own DLQ.
   * `functionTimeout` sets the visibility timeout (6× plus the batching window).
   */
  public addConsumer(name: string, functionTimeout: Duration, batchingWindow: Duration, replayPrefix: string): ConsumerQueue {
    if (this.consumers.has(name)) throw new Error(`consumer ${name} exists`);
    const deadLetterQueue = newQueue(this, `${name}Dlq`, { retentionPeriod: DLQ_RETENTION });
    const queue = newQueue(this, `${name}Queue`, {
      retentionPeriod: QUEUE_RETENTION,
      visibilityTimeout: Duration.seconds(functionTimeout.toSeconds() * VISIBILITY_TIMEOUT_FACTOR + batchingWindow.toSeconds()),
      deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: MAX_RECEIVE_COUNT },
    });
    const rule = new events.Rule(this, `${name}Rule`, {
      description: `New ${DATA_PREFIX} and ${replayPrefix} objects in the metrics bucket, for the ${name.toLowerCase()}`,
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: {
          bucket: { name: [this.bucket.bucketName] },
          // Either prefix: values in one array match when any matches.
          object: { key: [{ prefix: DATA_PREFIX }, { prefix: replayPrefix }] },
        },
      },
      targets: [
        new targets.SqsQueue(queue, {
          deadLetterQueue: this.fanOutDeadLetterQueue,
          retryAttempts: 185,
          maxEventAge: Duration.hours(24),
        }),
      ],
    });
    const consumer = { queue, deadLetterQueue, rule };
    this.consumers.set(name, consumer);
    return consumer;
  }

  /** Every consumer queue, by name. */
  public consumerQueues(): [string, ConsumerQueue][] {
    return [...this.consumers.entries()];
  }

  public get removalPolicy(): RemovalPolicy {
    return this.props.removalPolicy;
  }
}

/** SQS with SQS-managed encryption and a TLS-only policy. */
export function newQueue(scope: Construct, id: string, props: sqs.QueueProps): sqs.Queue {
  const queue = new sqs.Queue(scope, id, {
    ...props,
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
  });
  skipCheckov(queue, {
    id: 'CKV_AWS_27',
    reason: 'Encrypted at rest with SQS-managed keys (SqsManagedSseEnabled: true); the check recognises only KmsMasterKeyId. EventBridge and S3 cannot send to queues encrypted with the AWS-managed SQS KMS key.',
  });
  if (!props.deadLetterQueue) {
    skipCfnLint(queue, { id: 'ES6000', reason: 'This queue is a dead-letter queue, the end of its redrive chain.' });
  }
  return queue;
}
