// An EventBridge rule target that puts events into a Firehose stream with the rendered input
// transformer, an explicit retry policy and an SQS dead-letter queue.
//
// aws-events-targets' KinesisFirehoseStream target has no dead-letter-queue or retry option,
// and RuleTargetInput.fromObject/fromText rewrite the template; this target passes the
// rendered InputPathsMap and InputTemplate through unchanged.

import { Duration, Names } from 'aws-cdk-lib';
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

  public bind(rule: events.IRule, _id?: string): events.RuleTargetConfig {
    const { stream, role, input, deadLetterQueue, retryAttempts, maxEventAge } = this.props;
    stream.grantPutRecords(role);
    allowRuleToSendToDeadLetterQueue(rule, deadLetterQueue);
    return {
      arn: stream.deliveryStreamArn,
      role,
      input,
      deadLetterConfig: { arn: deadLetterQueue.queueArn },
      retryPolicy: { maximumRetryAttempts: retryAttempts, maximumEventAgeInSeconds: maxEventAge.toSeconds() },
    };
  }
}

/**
 * Lets exactly this rule send to the dead-letter queue: principal `events.amazonaws.com`,
 * condition `aws:SourceArn` = the rule's ARN (the console adds this; IaC must).
 */
export function allowRuleToSendToDeadLetterQueue(rule: events.IRule, queue: sqs.IQueue): void {
  const result = queue.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: `AllowRule${Names.nodeUniqueId(rule.node)}`.slice(0, 100),
      principals: [new iam.ServicePrincipal('events.amazonaws.com')],
      actions: ['sqs:SendMessage'],
      resources: [queue.queueArn],
      conditions: { ArnEquals: { 'aws:SourceArn': rule.ruleArn } },
    }),
  );
  if (!result.statementAdded) {
    throw new Error(`cannot add a resource policy to imported queue ${queue.node.path}`);
  }
}
