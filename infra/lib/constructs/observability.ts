// Alarms on every failure path, and one dashboard. Every DLQ alarms on its first message;
// Firehose on delivery and processing failures and stale data; each function on errors and
// throttles; the consumer queues on the age of their oldest message; the metric rules on
// failed invocations. Alarms notify an SNS topic when one is configured.

import { Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { REASONS, skipCfnLint, skipCheckov } from '../suppressions';

/** A consumer queue whose oldest message is older than this is falling behind. */
export const QUEUE_AGE_THRESHOLD = Duration.minutes(15);
/** Firehose data older than this in the stream means delivery is stuck (buffer is 60 s). */
export const DATA_FRESHNESS_THRESHOLD = Duration.minutes(15);

/**
 * The dimensions AWS/Events publishes a rule's metrics under: `RuleName` (the bare name, never
 * CloudFormation's `Ref`, which is `<bus>|<rule>` on a custom bus), and `EventBusName` too
 * for a rule on a custom bus; a metric with other dimensions than the published ones has no
 * data, and the alarm would sit in OK forever.
 * https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html
 */
export function ruleMetricDimensions(rule: { ruleName: string; eventBusName: string }): Record<string, string> {
  return rule.eventBusName === 'default' ? { RuleName: rule.ruleName } : { EventBusName: rule.eventBusName, RuleName: rule.ruleName };
}

export interface ObservabilityProps {
  readonly dashboardName: string;
  readonly alarmEmail?: string;
  readonly alarmTopicArn?: string;
  readonly deadLetterQueues: { name: string; queue: sqs.IQueue }[];
  readonly consumerQueues: { name: string; queue: sqs.IQueue }[];
  readonly functions: { name: string; fn: lambda.IFunction }[];
  readonly deliveryStream: firehose.IDeliveryStream;
  readonly rules: { metricName: string; ruleName: string; eventBusName: string }[];
  /** Counts that alarm on any non-zero value (the alert evaluator's dead letters, …). */
  readonly failureCounts?: { name: string; metric: cloudwatch.IMetric; description: string }[];
}

export class Observability extends Construct {
  public readonly alarms: cloudwatch.Alarm[] = [];
  public readonly topic?: sns.ITopic;
  public readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);

    if (props.alarmTopicArn) {
      this.topic = sns.Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn);
    } else if (props.alarmEmail) {
      const topic = new sns.Topic(this, 'AlarmTopic', { displayName: 'metrics-lake alarms', enforceSSL: true });
      const subscription = new sns.Subscription(this, 'AlarmEmail', {
        topic,
        protocol: sns.SubscriptionProtocol.EMAIL,
        endpoint: props.alarmEmail,
      });
      skipCfnLint(subscription, {
        id: 'ES7000',
        reason: 'An e-mail subscription to the alarm topic: SNS retries e-mail delivery itself, and a DLQ for it could only alarm back through this same topic.',
      });
      // enforceSSL writes a topic policy, which replaces SNS's default one (that let the
      // account's services publish); with only the TLS Deny in it, CloudWatch could not publish
      // a single alarm. Allow it for this account's alarms:
      // https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html
      topic.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'AllowCloudWatchAlarms',
          principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
          actions: ['sns:Publish'],
          resources: [topic.topicArn],
          conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
        }),
      );
      skipCheckov(topic, { id: 'CKV_AWS_26', reason: `${REASONS.awsManagedEncryption} Alarm notifications carry no event data.` });
      this.topic = topic;
    }

    const alarm = (id: string, metric: cloudwatch.IMetric, options: Omit<cloudwatch.CreateAlarmOptions, 'metric'>) => {
      const created = new cloudwatch.Alarm(this, id, { metric, ...options, treatMissingData: options.treatMissingData ?? cloudwatch.TreatMissingData.NOT_BREACHING });
      if (this.topic) {
        created.addAlarmAction(new actions.SnsAction(this.topic));
        created.addOkAction(new actions.SnsAction(this.topic));
      }
      this.alarms.push(created);
      return created;
    };
    const period = Duration.minutes(5);

    const dlqWidgets: cloudwatch.IWidget[] = [];
    for (const { name, queue } of props.deadLetterQueues) {
      const depth = queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' });
      alarm(`${name}Depth`, depth, {
        alarmDescription:
          `${name}: messages in a dead-letter queue need attention. See failed records with ` +
          '`metrics-lake errors --bucket <BucketName> --tenants-table <TenantsTableName>`, fix the cause, then redrive with ' +
          `\`metrics-lake replay --bucket <BucketName> --tenants-table <TenantsTableName> --redrive ${queue.queueArn} --redrive-only\` ` +
          '(stack outputs in <>; docs/recovery.md)',
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
      dlqWidgets.push(new cloudwatch.GraphWidget({ title: `${name} depth`, left: [depth], width: 6 }));
    }

    const queueWidgets: cloudwatch.IWidget[] = [];
    for (const { name, queue } of props.consumerQueues) {
      const age = queue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1), statistic: 'Maximum' });
      alarm(`${name}Age`, age, {
        alarmDescription: `${name}: the oldest message is older than ${QUEUE_AGE_THRESHOLD.toMinutes()} minutes (consumer failing or throttled)`,
        threshold: QUEUE_AGE_THRESHOLD.toSeconds(),
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 3,
      });
      queueWidgets.push(
        new cloudwatch.GraphWidget({
          title: `${name}`,
          left: [queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1) })],
          right: [age],
          width: 12,
        }),
      );
    }

    const stream = props.deliveryStream;
    const firehoseMetric = (metricName: string, statistic: string) =>
      new cloudwatch.Metric({
        namespace: 'AWS/Firehose',
        metricName,
        dimensionsMap: { DeliveryStreamName: stream.deliveryStreamName },
        statistic,
        period,
      });
    const processingSuccess = firehoseMetric('ExecuteProcessing.Success', 'Minimum');
    const deliverySuccess = firehoseMetric('DeliveryToS3.Success', 'Minimum');
    const freshness = firehoseMetric('DeliveryToS3.DataFreshness', 'Maximum');
    alarm('FirehoseProcessingFailures', processingSuccess, {
      alarmDescription: 'Firehose could not invoke the enrich function for a batch (see Error/processing-failed/)',
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 1,
    });
    alarm('FirehoseDeliveryFailures', deliverySuccess, {
      alarmDescription: 'Firehose failed to deliver to S3',
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 1,
    });
    alarm('FirehoseDataFreshness', freshness, {
      alarmDescription: `The oldest record in Firehose is older than ${DATA_FRESHNESS_THRESHOLD.toMinutes()} minutes`,
      threshold: DATA_FRESHNESS_THRESHOLD.toSeconds(),
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
    });
    const processedRecords = new cloudwatch.Metric({
      namespace: 'AWS/Firehose',
      metricName: 'SucceedProcessing.Records',
      dimensionsMap: { DeliveryStreamName: stream.deliveryStreamName },
      statistic: 'Sum',
      period,
    });

    const fnWidgets: cloudwatch.IWidget[] = [];
    for (const { name, fn } of props.functions) {
      const errors = fn.metricErrors({ period, statistic: 'Sum' });
      const throttles = fn.metricThrottles({ period, statistic: 'Sum' });
      alarm(`${name}Errors`, errors, {
        alarmDescription: `${name}: invocations failed`,
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
      alarm(`${name}Throttles`, throttles, {
        alarmDescription: `${name}: invocations were throttled`,
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
      fnWidgets.push(
        new cloudwatch.GraphWidget({
          title: name,
          left: [fn.metricInvocations({ period, statistic: 'Sum' }), errors, throttles],
          right: [fn.metricDuration({ period, statistic: 'p99' })],
          width: 6,
        }),
      );
    }

    // Failed rule invocations, summed in groups (a metric-math alarm takes at most 10 metrics).
    const failed = props.rules.map(
      (rule) =>
        new cloudwatch.Metric({
          namespace: 'AWS/Events',
          metricName: 'FailedInvocations',
          dimensionsMap: ruleMetricDimensions(rule),
          statistic: 'Sum',
          period,
        }),
    );
    const failedGroups: cloudwatch.MathExpression[] = [];
    for (let start = 0; start < failed.length; start += 10) {
      const group = failed.slice(start, start + 10);
      // Ids unique across groups: the dashboard graph shows every group, and a graph may not
      // use one id for two metrics.
      const usingMetrics = Object.fromEntries(group.map((m, i) => [`f${start + i}`, m]));
      const sum = new cloudwatch.MathExpression({
        expression: Object.keys(usingMetrics).join(' + '),
        usingMetrics,
        label: `Rule failed invocations (rules ${start + 1}-${start + group.length})`,
        period,
      });
      failedGroups.push(sum);
      alarm(`RuleFailedInvocations${start / 10 + 1}`, sum, {
        alarmDescription: 'Metric rules failed to put events into Firehose (events went to the rules DLQ after retries)',
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
    }

    const countWidgets: cloudwatch.IWidget[] = [];
    for (const { name, metric, description } of props.failureCounts ?? []) {
      alarm(name, metric, {
        alarmDescription: description,
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
      countWidgets.push(new cloudwatch.GraphWidget({ title: name, left: [metric], width: 6 }));
    }

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName,
      widgets: [
        [new cloudwatch.TextWidget({ markdown: '# metrics-lake\nEventBridge → Firehose → S3 → writer / forwarder; alarms below.', width: 24, height: 2 })],
        [
          new cloudwatch.GraphWidget({ title: 'Rules: failed invocations', left: failedGroups, width: 8 }),
          new cloudwatch.GraphWidget({
            title: 'Firehose: processing and delivery success',
            left: [processingSuccess, deliverySuccess],
            right: [processedRecords],
            width: 8,
          }),
          new cloudwatch.GraphWidget({ title: 'Firehose: data freshness (s)', left: [freshness], width: 8 }),
        ],
        fnWidgets,
        queueWidgets,
        dlqWidgets,
        countWidgets,
        [new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24 })],
      ],
    });
  }
}
