// Ingest: one EventBridge rule per rendered metric mapping → Firehose (DirectPut) → enrich
// Lambda processor → S3 `Data/` (GZIP), failures under `Error/`.

import { createHash } from 'node:crypto';
import { Duration, RemovalPolicy, Size, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { allowRulesToSendToDeadLetterQueue, FirehoseRuleTarget, VerbatimInputTransformer } from '../firehose-rule-target';
import type { RenderedRule } from '../rules';
import { newLogGroup } from './log-group';
import { DATA_PREFIX, DLQ_RETENTION, ERROR_PREFIX, newQueue } from './storage';

/** `Data/YYYY/MM/DD/HH/` by the arrival time of the oldest record in the object (UTC). */
export const DATA_OUTPUT_PREFIX = `${DATA_PREFIX}!{timestamp:yyyy/MM/dd/HH}/`;
/** `Error/processing-failed/YYYY/MM/DD/HH/` and the other error output types. */
export const ERROR_OUTPUT_PREFIX = `${ERROR_PREFIX}!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/`;
/** Destination buffering: whichever comes first. */
export const DELIVERY_BUFFER_INTERVAL = Duration.seconds(60);
export const DELIVERY_BUFFER_SIZE = Size.mebibytes(5);
/**
 * Processor buffer: 1 MB, as crates/enrich (src/lib.rs, "Processor buffer size") derives.
 * Lambda's response limit is 6 MB; an enriched response is at most ~2.2× a request that
 * Firehose sized by the buffer (worst case: many tiny records), so 1 MB keeps every response
 * under the limit, while 3 MB (the maximum, and CDK's default) can exceed it.
 */
export const PROCESSOR_BUFFER_SIZE = Size.mebibytes(1);
export const PROCESSOR_BUFFER_INTERVAL = Duration.seconds(60);
export const PROCESSOR_RETRIES = 3;
/** EventBridge → Firehose target retries: EventBridge's maximum (185 attempts, 24 h). */
export const RULE_RETRY_ATTEMPTS = 185;
export const RULE_MAX_EVENT_AGE = Duration.hours(24);

/** EventBridge rule names: 1-64 characters of `[.\-_A-Za-z0-9]`. */
const MAX_RULE_NAME = 64;

/**
 * The rule's name: `<stack>-<metric>`, or, when that is longer than EventBridge allows, the
 * metric name cut short plus a hash of the whole name (so two long names cannot collide).
 * Names are set rather than generated so that the rule ARNs are short and known at synth (the
 * rules DLQ policy lists them) and alarms can name the rule in their `RuleName` dimension.
 */
export function metricRuleName(stackName: string, metricName: string): string {
  const name = `${stackName}-${metricName}`;
  if (name.length <= MAX_RULE_NAME) return name;
  const hash = createHash('sha256').update(metricName).digest('hex').slice(0, 8);
  return `${name.slice(0, MAX_RULE_NAME - hash.length - 1)}-${hash}`;
}

/** One deployed metric rule, with what its CloudWatch metrics are keyed by. */
export interface MetricRule {
  readonly metricName: string;
  readonly rule: events.Rule;
  readonly ruleName: string;
  /** `default`, or the custom bus the rule is on (AWS/Events then adds an `EventBusName` dimension). */
  readonly eventBusName: string;
}

export interface IngestProps {
  readonly rules: RenderedRule[];
  /** Put every rule on this bus (overrides the rendered bus names). */
  readonly eventBus?: events.IEventBus;
  /** The literal name of `eventBus` (a created bus's name is a token in the template). */
  readonly eventBusName?: string;
  /** `false`: the rules are deployed disabled and match nothing. */
  readonly rulesEnabled: boolean;
  readonly bucket: s3.IBucket;
  readonly enrichFunction: lambda.IFunction;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

export class Ingest extends Construct {
  public readonly deliveryStream: firehose.DeliveryStream;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly rules: MetricRule[] = [];
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: IngestProps) {
    super(scope, id);

    this.logGroup = newLogGroup(this, 'FirehoseLogs', props.logRetention, props.removalPolicy);

    this.deliveryStream = new firehose.DeliveryStream(this, 'Stream', {
      encryption: firehose.StreamEncryption.awsOwnedKey(),
      destination: new firehose.S3Bucket(props.bucket, {
        dataOutputPrefix: DATA_OUTPUT_PREFIX,
        errorOutputPrefix: ERROR_OUTPUT_PREFIX,
        bufferingInterval: DELIVERY_BUFFER_INTERVAL,
        bufferingSize: DELIVERY_BUFFER_SIZE,
        compression: firehose.Compression.GZIP,
        loggingConfig: new firehose.EnableLogging(this.logGroup),
        processors: [
          new firehose.LambdaFunctionProcessor(props.enrichFunction, {
            bufferSize: PROCESSOR_BUFFER_SIZE,
            bufferInterval: PROCESSOR_BUFFER_INTERVAL,
            retries: PROCESSOR_RETRIES,
          }),
        ],
      }),
    });

    // aws-kinesisfirehose adds the destination's log stream with a plain Retain: give it the
    // stage's policy like its log group (plain Retain would outlive a failed first create).
    for (const stream of this.node.findAll().filter((c): c is logs.CfnLogStream => c instanceof logs.CfnLogStream)) {
      stream.applyRemovalPolicy(props.removalPolicy);
    }

    this.deadLetterQueue = newQueue(this, 'RulesDlq', { retentionPeriod: DLQ_RETENTION });
    const role = new iam.Role(this, 'RulesRole', {
      assumedBy: new iam.ServicePrincipal('events.amazonaws.com'),
      description: 'EventBridge puts metric events into the Firehose stream',
    });

    const buses = new Map<string, events.IEventBus>();
    const busNamed = (name: string): events.IEventBus => {
      let bus = buses.get(name);
      if (!bus) {
        bus = events.EventBus.fromEventBusName(this, `Bus-${name}`, name);
        buses.set(name, bus);
      }
      return bus;
    };

    if (props.eventBus && !props.eventBusName) throw new Error('eventBus needs its literal eventBusName');
    const stackName = Stack.of(this).stackName;
    for (const rendered of props.rules) {
      const bus = props.eventBus ?? busNamed(rendered.eventBusName);
      const ruleName = metricRuleName(stackName, rendered.metricName);
      const rule = new events.Rule(this, `Rule-${rendered.metricName}`, {
        ruleName,
        enabled: props.rulesEnabled,
        description: (rendered.description ?? `Metric ${rendered.metricName}`).slice(0, 512),
        eventBus: bus,
        // Deployed verbatim (the L2 only renames `detailType`, which rendered patterns never use).
        eventPattern: rendered.eventPattern as events.EventPattern,
      });
      rule.addTarget(
        new FirehoseRuleTarget({
          stream: this.deliveryStream,
          role,
          input: new VerbatimInputTransformer(rendered.inputTransformer.inputPathsMap, rendered.inputTransformer.inputTemplate),
          deadLetterQueue: this.deadLetterQueue,
          retryAttempts: RULE_RETRY_ATTEMPTS,
          maxEventAge: RULE_MAX_EVENT_AGE,
        }),
      );
      this.rules.push({ metricName: rendered.metricName, rule, ruleName, eventBusName: props.eventBusName ?? rendered.eventBusName });
    }
    allowRulesToSendToDeadLetterQueue(this.rules, this.deadLetterQueue);
  }
}
