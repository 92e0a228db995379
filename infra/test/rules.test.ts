// The deployed EventBridge rules are exactly the rendered mapping file, generated/rules.json.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_RULES_FILE, loadRules, parseRules, RulesFileError } from '../lib/rules';
import { App } from 'aws-cdk-lib';
import { readSettings } from '../lib/config';
import { metricRuleName, RULE_MAX_EVENT_AGE, RULE_RETRY_ATTEMPTS } from '../lib/constructs/ingest';
import { SQS_POLICY_MAX_BYTES, SQS_POLICY_MAX_STATEMENTS } from '../lib/firehose-rule-target';
import { MetricsLakeStack } from '../lib/metrics-lake-stack';
import { ACCOUNT, list, logicalId, REGION, resourcesOfType, synth, type Synthesized } from './helpers';

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

  it('lets only the metric rules send to the rules DLQ, in one statement listing their ARNs', () => {
    const s = synth();
    const policy = dlqPolicy(s);
    const allows = policy.Statement.filter((st: any) => st.Effect === 'Allow');
    assert.equal(allows.length, 1, 'one statement for every rule (SQS allows 20 per policy)');
    assert.deepStrictEqual(allows[0].Principal, { Service: 'events.amazonaws.com' });
    assert.equal(allows[0].Action, 'sqs:SendMessage');
    const senders = list(allows[0].Condition.ArnEquals['aws:SourceArn']).map((a) => JSON.stringify(a));
    const rules = metricRules(s).map(([id]) => JSON.stringify({ 'Fn::GetAtt': [id, 'Arn'] }));
    assert.deepStrictEqual([...senders].sort(), [...rules].sort());
    const denies = policy.Statement.filter((st: any) => st.Effect === 'Deny');
    assert.ok(denies.some((st: any) => st.Condition?.Bool?.['aws:SecureTransport'] === 'false'), 'TLS only');
  });

  it('deploys the rules disabled with rulesEnabled=false (first deploy, before the tenant directory is loaded)', () => {
    const off = synth({ rulesEnabled: 'false' });
    assert.equal(metricRules(off).length, rendered.rules.length);
    for (const [id, r] of metricRules(off)) assert.equal(r.Properties.State, 'DISABLED', id);
    for (const [id, r] of metricRules(synth())) assert.equal(r.Properties.State, 'ENABLED', id);
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

/** The rules DLQ's policy document. */
function dlqPolicy(s: Synthesized): any {
  const dlq = logicalId(s, s.stack.ingest.deadLetterQueue);
  const [, policy] = resourcesOfType(s, 'AWS::SQS::QueuePolicy').find(([, p]) =>
    list(p.Properties.Queues).some((q: any) => JSON.stringify(q) === JSON.stringify({ Ref: dlq })),
  )!;
  return policy.Properties.PolicyDocument;
}

/**
 * The policy as SQS would store it: every rule ARN written out from the rule's name and bus,
 * the queue ARN with the longest name CloudFormation generates (80 characters).
 */
function deployedPolicyBytes(s: Synthesized): number {
  const byId = new Map(resourcesOfType(s, 'AWS::Events::Rule').map(([id, r]) => [id, r.Properties]));
  const text = JSON.stringify(dlqPolicy(s), (_key, value) => {
    const getAtt = value?.['Fn::GetAtt'];
    if (!getAtt) return value;
    const rule = byId.get(getAtt[0]);
    if (rule) {
      const bus = typeof rule.EventBusName === 'string' && rule.EventBusName !== 'default' ? `${rule.EventBusName}/` : '';
      return `arn:aws:events:${REGION}:${ACCOUNT}:rule/${bus}${rule.Name}`;
    }
    return `arn:aws:sqs:${REGION}:${ACCOUNT}:${'q'.repeat(80)}`;
  });
  return Buffer.byteLength(text, 'utf8');
}

describe('sixty metrics (test/fixtures/rules-60.json)', () => {
  const SIXTY = path.join(__dirname, 'fixtures', 'rules-60.json');

  for (const [name, context] of [
    ['on the default bus', { stage: 'prod', alarmEmail: 'alarms@example.com', rulesFile: SIXTY }],
    ['on an existing custom bus (longer ARNs)', { stage: 'prod', eventBusName: 'domain-events', rulesFile: SIXTY }],
  ] as const) {
    it(`${name}: one DLQ statement with 60 rule ARNs, within SQS's policy quotas`, () => {
      const s = synth(context);
      assert.equal(metricRules(s).length, 60);
      const policy = dlqPolicy(s);
      assert.ok(policy.Statement.length <= SQS_POLICY_MAX_STATEMENTS, `${policy.Statement.length} statements`);
      const allows = policy.Statement.filter((st: any) => st.Effect === 'Allow');
      assert.equal(allows.length, 1);
      assert.equal(list(allows[0].Condition.ArnEquals['aws:SourceArn']).length, 60);
      const bytes = deployedPolicyBytes(s);
      assert.ok(bytes < SQS_POLICY_MAX_BYTES, `${bytes} bytes`);
    });
  }

  it('names each rule <stack>-<metric>, within EventBridge\'s 64 characters, hashing names that would not fit', () => {
    const s = synth({ rulesFile: SIXTY });
    for (const { metricName, rule, ruleName } of s.stack.ingest.rules) {
      const props = s.json.Resources[s.stack.getLogicalId(rule.node.defaultChild as any)].Properties;
      assert.equal(props.Name, ruleName);
      assert.equal(ruleName, `metrics-lake-dev-${metricName}`);
    }
    const long = 'm'.repeat(100);
    const a = metricRuleName('metrics-lake-prod', `${long}_a`);
    const b = metricRuleName('metrics-lake-prod', `${long}_b`);
    assert.equal(a.length, 64);
    assert.match(a, /^metrics-lake-prod-m+-[0-9a-f]{8}$/);
    assert.notEqual(a, b);
  });

  it('fails at synth, not at deploy, when the rules would not fit in the DLQ policy', () => {
    const rules = Array.from({ length: 150 }, (_, i) => ({
      metricName: `a_rather_long_metric_name_for_a_domain_event_${i}`,
      eventBusName: 'domain-events',
      eventPattern: { source: ['x'], 'detail-type': [`t${i}`] },
      inputTransformer: { inputPathsMap: { a: '$.id' }, inputTemplate: '{"a":<a>}' },
    }));
    const app = new App({ context: { skipBundling: 'true' } });
    const settings = readSettings((k) => ({ store: 'timestream', skipBundling: 'true' })[k as 'store']);
    assert.throws(
      () => new MetricsLakeStack(app, 'metrics-lake-dev', { settings, rules, env: { account: ACCOUNT, region: REGION } }),
      /150 metric rules make the rules DLQ policy about \d+ bytes, over the SQS limit of 8192/,
    );
  });

  it('alarms on each rule\'s failed invocations under the dimensions AWS/Events publishes', () => {
    for (const [context, withBus] of [
      [{ rulesFile: SIXTY }, false],
      [{ rulesFile: SIXTY, eventBusName: 'domain-events' }, true],
      [{ rulesFile: SIXTY, createEventBus: 'true' }, true],
    ] as const) {
      const s = synth(context);
      const dims = resourcesOfType(s, 'AWS::CloudWatch::Alarm')
        .flatMap(([, a]) => a.Properties.Metrics ?? [])
        .filter((m: any) => m.MetricStat?.Metric.MetricName === 'FailedInvocations')
        .map((m: any) => Object.fromEntries(m.MetricStat.Metric.Dimensions.map((d: any) => [d.Name, d.Value])));
      assert.equal(dims.length, 60, 'every rule is watched');
      const names = new Set(s.stack.ingest.rules.map((r) => r.ruleName));
      for (const d of dims) {
        // The bare rule name, never a token (`Ref` is `<bus>|<rule>` on a custom bus).
        assert.equal(typeof d.RuleName, 'string');
        assert.ok(names.has(d.RuleName), d.RuleName);
        if (withBus) assert.ok(d.EventBusName === 'domain-events' || d.EventBusName === 'metrics-lake-dev', JSON.stringify(d));
        else assert.deepStrictEqual(Object.keys(d), ['RuleName']);
      }
    }
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
