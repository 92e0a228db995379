// The deployed EventBridge rules are exactly the rendered mapping file, generated/rules.json.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_RULES_FILE, loadRules, parseRules, RulesFileError } from '../lib/rules';
import { RULE_MAX_EVENT_AGE, RULE_RETRY_ATTEMPTS } from '../lib/constructs/ingest';
import { list, logicalId, resourcesOfType, synth, type Synthesized } from './helpers';

const rendered = JSON.parse(fs.readFileSync(DEFAULT_RULES_FILE, 'utf8')) as { rules: any[] };

function metricRules(s: Synthesized) {
  const streamId = logicalId(s, s.stack.ingest.deliveryStream);
  return resourcesOfType(s, 'AWS::Events::Rule').filter(([, r]) =>
    (r.Properties.Targets ?? []).some((t: any) => JSON.stringify(t.Arn) === JSON.stringify({ 'Fn::GetAtt': [streamId, 'Arn'] })),
  );
}

describe('generated/rules.json', () => {
  it('is committed, valid, and names every metric once', () => {
    const rules = loadRules();
    assert.ok(rules.length > 0);
    assert.equal(rules.length, rendered.rules.length);
    assert.equal(new Set(rules.map((r) => r.metricName)).size, rules.length);
  });

  it('becomes exactly one Firehose-targeted rule per rendered rule, with its pattern, bus and transformer verbatim', () => {
    const s = synth();
    const deployed = metricRules(s);
    assert.equal(deployed.length, rendered.rules.length, 'one rule per rendered rule, no more');

    for (const want of rendered.rules) {
      const entry = s.stack.ingest.rules.find((r) => r.metricName === want.metricName);
      assert.ok(entry, `a rule for ${want.metricName}`);
      const id = s.stack.getLogicalId(entry.rule.node.defaultChild as any);
      const props = s.json.Resources[id].Properties;
      assert.deepStrictEqual(props.EventPattern, want.eventPattern, `${want.metricName}: event pattern`);
      assert.equal(props.EventBusName, want.eventBusName, `${want.metricName}: bus`);
      assert.equal(props.State, 'ENABLED');
      assert.equal(props.Targets.length, 1);
      // Every rule wraps the whole event with its metric's name; metrics-enrich maps it.
      assert.deepStrictEqual(
        props.Targets[0].InputTransformer,
        { InputTemplate: `{"metric":"${want.metricName}","event":<aws.events.event.json>}` },
        `${want.metricName}: input transformer`,
      );
      assert.equal(want.inputTransformer.inputPathsMap, undefined, `${want.metricName}: no paths map`);
    }
    // And the other way round: every deployed pattern is a rendered one.
    const patterns = rendered.rules.map((r) => JSON.stringify(r.eventPattern));
    for (const [id, r] of deployed) assert.ok(patterns.includes(JSON.stringify(r.Properties.EventPattern)), `${id} is rendered`);
  });

  it('gives every metric rule a retry policy, the rules DLQ and the EventBridge role', () => {
    const s = synth();
    const dlq = logicalId(s, s.stack.ingest.deadLetterQueue);
    for (const [id, r] of metricRules(s)) {
      const target = r.Properties.Targets[0];
      assert.deepStrictEqual(target.RetryPolicy, {
        MaximumRetryAttempts: RULE_RETRY_ATTEMPTS,
        MaximumEventAgeInSeconds: RULE_MAX_EVENT_AGE.toSeconds(),
      }, id);
      assert.deepStrictEqual(target.DeadLetterConfig, { Arn: { 'Fn::GetAtt': [dlq, 'Arn'] } }, id);
      assert.ok(target.RoleArn, `${id} has a role`);
    }
  });

  it('lets only the metric rules send to the rules DLQ', () => {
    const s = synth();
    const dlq = logicalId(s, s.stack.ingest.deadLetterQueue);
    const [, policy] = resourcesOfType(s, 'AWS::SQS::QueuePolicy').find(([, p]) =>
      list(p.Properties.Queues).some((q: any) => JSON.stringify(q) === JSON.stringify({ Ref: dlq })),
    )!;
    const allows = policy.Properties.PolicyDocument.Statement.filter((st: any) => st.Effect === 'Allow');
    const senders = allows.map((st: any) => {
      assert.deepStrictEqual(st.Principal, { Service: 'events.amazonaws.com' });
      assert.equal(st.Action, 'sqs:SendMessage');
      return JSON.stringify(st.Condition.ArnEquals['aws:SourceArn']);
    });
    const rules = metricRules(s).map(([id]) => JSON.stringify({ 'Fn::GetAtt': [id, 'Arn'] }));
    assert.deepStrictEqual([...senders].sort(), [...rules].sort());
    const denies = policy.Properties.PolicyDocument.Statement.filter((st: any) => st.Effect === 'Deny');
    assert.ok(denies.some((st: any) => st.Condition?.Bool?.['aws:SecureTransport'] === 'false'), 'TLS only');
  });

  it('puts the rules on an existing bus, or a new one, when configured', () => {
    const existing = synth({ eventBusName: 'domain-events' });
    for (const [, r] of metricRules(existing)) assert.equal(r.Properties.EventBusName, 'domain-events');
    assert.equal(resourcesOfType(existing, 'AWS::Events::EventBus').length, 0);

    const created = synth({ createEventBus: 'true' });
    const [busId] = resourcesOfType(created, 'AWS::Events::EventBus')[0];
    for (const [, r] of metricRules(created)) assert.deepStrictEqual(r.Properties.EventBusName, { Ref: busId });
  });

  it('deploys a rules file it is pointed at, verbatim (custom bus, several targets)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rules-'));
    const file = path.join(dir, 'rules.json');
    const doc = {
      rules: [
        {
          metricName: 'orders.placed',
          eventBusName: 'orders',
          eventPattern: { source: ['shop'], 'detail-type': ['OrderPlaced'], detail: { total: [{ numeric: ['>', 0] }] } },
          inputTransformer: { inputPathsMap: { t: '$.detail.tenant' }, inputTemplate: '{"metric_name":"orders.placed","metadata":{"tenant_id":<t>}}' },
        },
      ],
    };
    fs.writeFileSync(file, JSON.stringify(doc));
    const s = synth({ rulesFile: file });
    const deployed = metricRules(s);
    assert.equal(deployed.length, 1);
    assert.deepStrictEqual(deployed[0][1].Properties.EventPattern, doc.rules[0].eventPattern);
    assert.equal(deployed[0][1].Properties.EventBusName, 'orders');
    assert.deepStrictEqual(deployed[0][1].Properties.Targets[0].InputTransformer, {
      InputPathsMap: doc.rules[0].inputTransformer.inputPathsMap,
      InputTemplate: doc.rules[0].inputTransformer.inputTemplate,
    });
  });
});

describe('rules file validation', () => {
  const good = () => ({
    rules: [
      {
        metricName: 'm',
        eventBusName: 'default',
        eventPattern: { source: ['x'] },
        inputTransformer: { inputPathsMap: { a: '$.detail.a' }, inputTemplate: '{"a":<a>}' },
      },
    ],
  });

  it('accepts a minimal document', () => {
    assert.equal(parseRules(good()).length, 1);
  });

  it('accepts a wrapping transformer without a paths map, and keeps none', () => {
    const doc: any = good();
    doc.rules[0].inputTransformer = { inputTemplate: '{"metric":"m","event":<aws.events.event.json>}' };
    const [rule] = parseRules(doc);
    assert.deepStrictEqual(rule.inputTransformer, { inputTemplate: '{"metric":"m","event":<aws.events.event.json>}' });
  });

  const broken: [string, (d: any) => void, RegExp][] = [
    ['no rules array', (d) => delete d.rules, /rules/],
    ['empty rules', (d) => (d.rules = []), /no rules/],
    ['bad metric name', (d) => (d.rules[0].metricName = 'has space'), /metricName/],
    ['duplicate metric', (d) => d.rules.push(structuredClone(d.rules[0])), /twice/],
    ['empty pattern', (d) => (d.rules[0].eventPattern = {}), /eventPattern/],
    ['missing transformer', (d) => delete d.rules[0].inputTransformer, /inputTransformer/],
    ['undefined placeholder', (d) => (d.rules[0].inputTransformer.inputTemplate = '{"a":<b>}'), /<b>/],
    ['non-path input', (d) => (d.rules[0].inputTransformer.inputPathsMap.a = 'detail.a'), /JSON path/],
    ['too many input paths', (d) => {
      for (let i = 0; i < 101; i++) d.rules[0].inputTransformer.inputPathsMap[`p${i}`] = '$.id';
    }, /more than 100/],
    ['template too long', (d) => (d.rules[0].inputTransformer.inputTemplate = `"${'x'.repeat(8200)}"`), /1-8192/],
    ['bad bus name', (d) => (d.rules[0].eventBusName = 'no/slash'), /eventBusName/],
  ];
  for (const [name, breakIt, message] of broken) {
    it(`rejects: ${name}`, () => {
      const doc = good();
      breakIt(doc);
      assert.throws(() => parseRules(doc), (e: unknown) => e instanceof RulesFileError && message.test((e as Error).message));
    });
  }

  it('reports a missing file with the render command', () => {
    assert.throws(() => loadRules('/nonexistent/rules.json'), /mappings render/);
  });
});
