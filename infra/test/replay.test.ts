// What `metrics-lake errors` and `replay --bucket` rely on in the deployed stack: each
// consumer's queue also receives its own replay prefix, each consumer may read it, the
// operator policy grants exactly what the commands call, and every DLQ alarm names them.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { list, logicalId, resourcesOfType, synth } from './helpers';

const s = synth();
const stack = s.stack;

function ruleKeys(consumer: string): unknown[] {
  const rules = resourcesOfType(s, 'AWS::Events::Rule').filter(([id]) => id.includes(`${consumer}Rule`));
  assert.equal(rules.length, 1, consumer);
  return rules[0][1].Properties.EventPattern.detail.object.key;
}

function operatorStatements(): any[] {
  const id = logicalId(s, stack.replayOperator.policy);
  return s.json.Resources[id].Properties.PolicyDocument.Statement;
}

function statement(sid: string): any {
  const found = operatorStatements().find((st) => st.Sid === sid);
  assert.ok(found, sid);
  return found;
}

/** `Fn::Join` pieces flattened to text, tokens as their logical ids. */
function text(value: unknown): string {
  return JSON.stringify(value);
}

describe('replay objects reach one consumer', () => {
  it('each consumer rule matches Data/ and its own replay prefix only', () => {
    assert.deepEqual(ruleKeys('Writer'), [{ prefix: 'Data/' }, { prefix: 'Replay/writer/' }]);
    assert.deepEqual(ruleKeys('Forwarder'), [{ prefix: 'Data/' }, { prefix: 'Replay/forwarder/' }]);
  });

  it('the writer and forwarder may read their replay prefix, and not the other one', () => {
    const reads = (fn: 'writer' | 'forwarder') => {
      const role = s.json.Resources[logicalId(s, stack.functions[fn])].Properties.Role['Fn::GetAtt'][0];
      return resourcesOfType(s, 'AWS::IAM::Policy')
        .filter(([, p]) => list(p.Properties.Roles).some((r: any) => r.Ref === role))
        .flatMap(([, p]) => p.Properties.PolicyDocument.Statement)
        .filter((st: any) => list(st.Action).includes('s3:GetObject'))
        .map((st: any) => text(st.Resource))
        .join(' ');
    };
    assert.match(reads('writer'), /Replay\/writer\/\*/);
    assert.doesNotMatch(reads('writer'), /Replay\/forwarder/);
    assert.match(reads('forwarder'), /Replay\/forwarder\/\*/);
    assert.doesNotMatch(reads('forwarder'), /Replay\/writer/);
  });

  it('replay objects and marks expire with the errors they come from', () => {
    const bucket = s.json.Resources[logicalId(s, stack.storage.bucket)].Properties;
    const rules = bucket.LifecycleConfiguration.Rules;
    const errors = rules.find((r: any) => r.Prefix === 'Error/');
    for (const prefix of ['Replay/', 'Replayed/']) {
      const rule = rules.find((r: any) => r.Prefix === prefix);
      assert.ok(rule, prefix);
      assert.equal(rule.ExpirationInDays, errors.ExpirationInDays);
    }
  });
});

describe('the replay operator policy', () => {
  it('is least privilege: no store, no wildcard resource, no write outside the replay prefixes', () => {
    const actions = operatorStatements().flatMap((st) => list<string>(st.Action));
    assert.ok(!actions.some((a) => a.startsWith('timestream:') || a.startsWith('secretsmanager:')), actions.join());
    for (const st of operatorStatements()) assert.ok(!list(st.Resource).includes('*'), st.Sid);
    assert.match(text(statement('WriteReplaysAndMarks').Resource), /Replay\/\*.*Replayed\/\*.*State\/replay\/\*/);
    assert.doesNotMatch(text(statement('WriteReplaysAndMarks').Resource), /Data\/|Error\//);
    assert.deepEqual(list(statement('FinishReplayProgress').Action), ['s3:DeleteObject']);
    assert.match(text(statement('FinishReplayProgress').Resource), /State\/replay\/\*/);
    assert.deepEqual(statement('ListErrorsAndMarks').Condition.StringLike['s3:prefix'], ['Error/*', 'Replayed/*', 'State/replay/*', 'State/origins/*']);
  });

  it('reads and redelivers alert notifications in the alerts table only', () => {
    const alerts = statement('RedeliverAlertNotifications');
    assert.deepEqual(list(alerts.Action).sort(), ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:Scan']);
    assert.match(text(alerts.Resource), new RegExp(logicalId(s, stack.alerts.table)));
  });

  it('puts records back into the delivery stream and reads the tenant directory', () => {
    assert.deepEqual(list(statement('PutRecordsBack').Action), ['firehose:PutRecordBatch']);
    assert.match(text(statement('PutRecordsBack').Resource), new RegExp(logicalId(s, stack.ingest.deliveryStream)));
    assert.match(text(statement('ReadTenantDirectory').Resource), new RegExp(logicalId(s, stack.tenants.table)));
  });

  it('moves only the consumer DLQs back, and sends only to the consumer queues', () => {
    const fns = stack.functions;
    const moves = text(statement('MoveDeadLettersBack').Resource);
    for (const q of [fns.writerQueue.deadLetterQueue, fns.forwarderQueue.deadLetterQueue]) assert.match(moves, new RegExp(logicalId(s, q)));
    assert.doesNotMatch(moves, new RegExp(logicalId(s, stack.ingest.deadLetterQueue)));
    const sends = text(statement('SendToConsumerQueues').Resource);
    for (const q of [fns.writerQueue.queue, fns.forwarderQueue.queue]) assert.match(sends, new RegExp(logicalId(s, q)));
    const inspects = text(statement('InspectDeadLetterQueues').Resource);
    for (const q of [stack.ingest.deadLetterQueue, stack.storage.fanOutDeadLetterQueue]) assert.match(inspects, new RegExp(logicalId(s, q)));
  });

  it('is an output, with every DLQ ARN the commands take', () => {
    const outputs = Object.keys(s.template.toJSON().Outputs);
    for (const name of ['ReplayOperatorPolicyArn', 'WriterDeadLetterQueueArn', 'ForwarderDeadLetterQueueArn', 'RulesDeadLetterQueueArn', 'FanOutDeadLetterQueueArn', 'DeliveryStreamName', 'BucketName']) {
      assert.ok(outputs.includes(name), name);
    }
  });
});

describe('dead-letter queue alarms', () => {
  it('name the commands that inspect and replay them', () => {
    const alarms = resourcesOfType(s, 'AWS::CloudWatch::Alarm').filter(([id]) => /Dlq/.test(id) && /Depth/.test(id));
    assert.equal(alarms.length, 4);
    for (const [id, alarm] of alarms) {
      const description = text(alarm.Properties.AlarmDescription);
      assert.match(description, /metrics-lake errors --bucket <BucketName> --tenants-table/, id);
      assert.match(description, /metrics-lake replay --bucket .* --redrive .*--redrive-only/, id);
    }
  });
});
