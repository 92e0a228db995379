// The least privilege `metrics-lake errors` and `metrics-lake replay --bucket` need, as a
// managed policy an operator attaches to whoever runs them (docs/recovery.md): read the
// bucket's error objects and write replay objects and marks, put records back into the
// delivery stream, read the tenant directory for the re-check, and redrive the dead-letter
// queues, and redeliver dead-lettered alert notifications. Nothing here touches the store:
// replayed records reach it through the writer.

import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ERROR_PREFIX, REPLAYED_PREFIX, REPLAY_PREFIX, STATE_PREFIX } from './storage';

/** A replay's progress markers, and a local run's record origins (crates/local/src/recover). */
export const REPLAY_STATE_PREFIX = `${STATE_PREFIX}replay/`;
export const ORIGINS_PREFIX = `${STATE_PREFIX}origins/`;

export interface ReplayOperatorProps {
  readonly bucket: s3.IBucket;
  readonly deliveryStream: firehose.IDeliveryStream;
  readonly tenantsTable: dynamodb.ITable;
  /** The alerts table: dead-lettered notifications are read there and redelivered. */
  readonly alertsTable: dynamodb.ITable;
  /** DLQs of SQS queues: redriven with StartMessageMoveTask back to `sources`. */
  readonly queueDeadLetterQueues: { dlq: sqs.IQueue; sources: sqs.IQueue[] }[];
  /** DLQs of EventBridge targets: each message is sent again to one of `targets`. */
  readonly targetDeadLetterQueues: { dlq: sqs.IQueue; targets: sqs.IQueue[] }[];
}

export class ReplayOperator extends Construct {
  public readonly policy: iam.ManagedPolicy;

  constructor(scope: Construct, id: string, props: ReplayOperatorProps) {
    super(scope, id);
    const { bucket } = props;
    const readPrefixes = [ERROR_PREFIX, REPLAYED_PREFIX, REPLAY_STATE_PREFIX, ORIGINS_PREFIX];
    const statements = [
      // Listing only these prefixes; it also makes a missing mark a 404 rather than a 403.
      new iam.PolicyStatement({
        sid: 'ListErrorsAndMarks',
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': readPrefixes.map((p) => `${p}*`) } },
      }),
      new iam.PolicyStatement({
        sid: 'ReadErrorsAndMarks',
        actions: ['s3:GetObject'],
        resources: readPrefixes.map((p) => bucket.arnForObjects(`${p}*`)),
      }),
      new iam.PolicyStatement({
        sid: 'WriteReplaysAndMarks',
        actions: ['s3:PutObject'],
        resources: [REPLAY_PREFIX, REPLAYED_PREFIX, REPLAY_STATE_PREFIX].map((p) => bucket.arnForObjects(`${p}*`)),
      }),
      new iam.PolicyStatement({
        sid: 'FinishReplayProgress',
        actions: ['s3:DeleteObject'],
        resources: [bucket.arnForObjects(`${REPLAY_STATE_PREFIX}*`)],
      }),
      new iam.PolicyStatement({
        sid: 'PutRecordsBack',
        actions: ['firehose:PutRecordBatch'],
        resources: [props.deliveryStream.deliveryStreamArn],
      }),
      new iam.PolicyStatement({
        sid: 'ReadTenantDirectory',
        actions: ['dynamodb:BatchGetItem', 'dynamodb:GetItem'],
        resources: [props.tenantsTable.tableArn],
      }),
    ];
    // errors/replay --alerts-table: every alert (a scan), its events (a query), and the
    // redelivery recorded as a new event.
    statements.push(
      new iam.PolicyStatement({
        sid: 'RedeliverAlertNotifications',
        actions: ['dynamodb:Scan', 'dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:PutItem'],
        resources: [props.alertsTable.tableArn],
      }),
    );
    const dlqs = [...props.queueDeadLetterQueues.map((q) => q.dlq), ...props.targetDeadLetterQueues.map((q) => q.dlq)];
    statements.push(
      new iam.PolicyStatement({
        sid: 'InspectDeadLetterQueues',
        actions: ['sqs:GetQueueUrl', 'sqs:GetQueueAttributes', 'sqs:ListDeadLetterSourceQueues', 'sqs:ReceiveMessage', 'sqs:DeleteMessage'],
        resources: dlqs.map((q) => q.queueArn),
      }),
      // A move task reads and deletes from the DLQ and sends to its source queue:
      // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html
      new iam.PolicyStatement({
        sid: 'MoveDeadLettersBack',
        actions: ['sqs:StartMessageMoveTask', 'sqs:ListMessageMoveTasks', 'sqs:CancelMessageMoveTask'],
        resources: props.queueDeadLetterQueues.map((q) => q.dlq.queueArn),
      }),
      new iam.PolicyStatement({
        sid: 'SendToConsumerQueues',
        actions: ['sqs:GetQueueUrl', 'sqs:SendMessage'],
        resources: [
          ...props.queueDeadLetterQueues.flatMap((q) => q.sources.map((s) => s.queueArn)),
          ...props.targetDeadLetterQueues.flatMap((q) => q.targets.map((t) => t.queueArn)),
        ],
      }),
    );
    this.policy = new iam.ManagedPolicy(this, 'Policy', {
      description:
        'metrics-lake errors / replay --bucket: read error objects, write Replay/ objects and marks, PutRecordBatch, redrive the DLQs',
      statements,
    });
  }
}
