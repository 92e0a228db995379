// An EventBridge rule target that puts events into a Firehose stream with the rendered input
// transformer, an explicit retry policy and an SQS dead-letter queue.
//
// aws-events-targets' KinesisFirehoseStream target has no dead-letter-queue or retry option,
// and RuleTargetInput.fromObject/fromText rewrite the template; this target passes the
// rendered InputPathsMap and InputTemplate through unchanged.
//
// The dead-letter queue's policy is not written per rule here: an SQS policy holds at most 20
// statements and 8,192 bytes, so the caller adds one statement for all rules
// (allowRulesToSendToDeadLetterQueue) once every rule exists.

import { Duration, Stack, Token } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import * as sqs from 'aws-cdk-lib/aws-sqs';

/** The rendered transformer, passed to EventBridge exactly as written (no paths map when it has none). */
export class VerbatimInputTransformer extends events.RuleTargetInput {
  constructor(
    private readonly inputPathsMap: Record<string, string> | undefined,
    private readonly inputTemplate: string,
  ) {
    super();
  }

  public bind(_rule: events.IRule): events.RuleTargetInputProperties {
    const paths = this.inputPathsMap && Object.keys(this.inputPathsMap).length > 0 ? { ...this.inputPathsMap } : undefined;
    return { inputPathsMap: paths, inputTemplate: this.inputTemplate };
  }
}

export interface FirehoseRuleTargetProps {
  readonly stream: firehose.IDeliveryStream;
  /** Role EventBridge assumes to call `firehose:PutRecord`/`PutRecordBatch`; shared by all rules. */
  readonly role: iam.IRole;
  readonly input: events.RuleTargetInput;
  /** Receives events that could not be delivered after the retries. */
  readonly deadLetterQueue: sqs.IQueue;
  /** EventBridge allows 0-185 (default 185). */
  readonly retryAttempts: number;
  /** EventBridge allows 60 s - 24 h (default 24 h). */
  readonly maxEventAge: Duration;
}

export class FirehoseRuleTarget implements events.IRuleTarget {
  constructor(private readonly props: FirehoseRuleTargetProps) {
    if (!Number.isInteger(props.retryAttempts) || props.retryAttempts < 0 || props.retryAttempts > 185) {
      throw new Error('retryAttempts must be 0-185');
    }
    const age = props.maxEventAge.toSeconds();
    if (age < 60 || age > 86400) throw new Error('maxEventAge must be 60 s to 24 h');
  }

  public bind(_rule: events.IRule, _id?: string): events.RuleTargetConfig {
    const { stream, role, input, deadLetterQueue, retryAttempts, maxEventAge } = this.props;
    stream.grantPutRecords(role);
    return {
      arn: stream.deliveryStreamArn,
      role,
      input,
      deadLetterConfig: { arn: deadLetterQueue.queueArn },
      retryPolicy: { maximumRetryAttempts: retryAttempts, maximumEventAgeInSeconds: maxEventAge.toSeconds() },
    };
  }
}

/** SQS policy quotas: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-policies.html */
export const SQS_POLICY_MAX_BYTES = 8192;
export const SQS_POLICY_MAX_STATEMENTS = 20;
/**
 * Room kept for the rest of the queue policy: this statement without its ARNs, the TLS-only
 * Deny statement and the document around them (about 600 bytes with a long queue ARN).
 */
export const SQS_POLICY_RESERVED_BYTES = 1024;

/** A rule whose ARN goes into the policy, with the literal parts of that ARN. */
export interface DeadLetterSender {
  readonly rule: events.IRule;
  /** The rule's name, as deployed. */
  readonly ruleName: string;
  /** Its bus; `default` for the account's default bus (whose rule ARNs have no bus segment). */
  readonly eventBusName: string;
}

/**
 * Lets exactly these rules send to the dead-letter queue in one statement: principal
 * `events.amazonaws.com`, condition `aws:SourceArn` = the list of their ARNs (the console adds
 * this condition; IaC must). One statement per rule would break the SQS quota of 20 statements
 * at the 20th metric; the list grows by one ARN per rule, and its size is checked here against
 * the 8,192-byte quota so that a too-large mapping file fails at synth, not at deploy.
 */
export function allowRulesToSendToDeadLetterQueue(senders: DeadLetterSender[], queue: sqs.IQueue): void {
  if (senders.length === 0) return;
  const stack = Stack.of(queue);
  const bytes = senders.reduce((sum, s) => sum + ruleArnUpperBound(stack, s).length + 3, 0) + SQS_POLICY_RESERVED_BYTES;
  if (bytes > SQS_POLICY_MAX_BYTES) {
    throw new Error(
      `${senders.length} metric rules make the rules DLQ policy about ${bytes} bytes, over the SQS limit of ${SQS_POLICY_MAX_BYTES}: split the mapping file over two stacks, or shorten the metric names`,
    );
  }
  const result = queue.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'AllowMetricRules',
      principals: [new iam.ServicePrincipal('events.amazonaws.com')],
      actions: ['sqs:SendMessage'],
      resources: [queue.queueArn],
      conditions: { ArnEquals: { 'aws:SourceArn': senders.map((s) => s.rule.ruleArn) } },
    }),
  );
  if (!result.statementAdded) {
    throw new Error(`cannot add a resource policy to imported queue ${queue.node.path}`);
  }
}

/**
 * The longest the rule's ARN can be once deployed: `arn:<partition>:events:<region>:<account>:rule/[<bus>/]<name>`,
 * with the longest region and partition names where the stack has no concrete environment.
 */
export function ruleArnUpperBound(stack: Stack, sender: DeadLetterSender): string {
  const region = Token.isUnresolved(stack.region) ? 'x'.repeat(16) : stack.region;
  const account = Token.isUnresolved(stack.account) ? '0'.repeat(12) : stack.account;
  const partition = Token.isUnresolved(stack.partition) ? 'aws-iso-b' : stack.partition;
  const bus = sender.eventBusName === 'default' ? '' : `${sender.eventBusName}/`;
  return `arn:${partition}:events:${region}:${account}:rule/${bus}${sender.ruleName}`;
}
