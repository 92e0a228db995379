// Tenants' alerts: the table, the evaluator on its schedule, what each function may do with
// them, the evaluator reading tenants' tables only through the tenant-query role, and alarms.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Match } from 'aws-cdk-lib/assertions';
import { DUE_INDEX, EVALUATOR_TIMEOUT } from '../lib/constructs/alerts';
import { INFLUX_CONTEXT, list, logicalId, resourcesOfType, synth, type Synthesized } from './helpers';

function roleOf(s: Synthesized, fnId: string): string {
  return s.json.Resources[fnId].Properties.Role['Fn::GetAtt'][0];
}

function statementsOf(s: Synthesized, roleId: string): any[] {
  return resourcesOfType(s, 'AWS::IAM::Policy')
    .filter(([, p]) => list(p.Properties.Roles).some((r: any) => r.Ref === roleId))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
}

function actions(statements: any[]): string[] {
  return [...new Set(statements.filter((st) => st.Effect === 'Allow').flatMap((st) => list<string>(st.Action)))].sort();
}

describe('alerts', () => {
  const s = synth();
  const tableId = logicalId(s, s.stack.alerts.table);
  const evaluatorId = logicalId(s, s.stack.alerts.evaluator);
  const tableArn = { 'Fn::GetAtt': [tableId, 'Arn'] };

  it('live in a table keyed by tenant, with the due index, events expiring, point-in-time recovery', () => {
    const table = s.json.Resources[tableId].Properties;
    assert.deepStrictEqual(table.KeySchema, [
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ]);
    assert.equal(table.BillingMode, 'PAY_PER_REQUEST');
    assert.deepStrictEqual(table.TimeToLiveSpecification, { AttributeName: 'expires_at', Enabled: true });
    const [index] = table.GlobalSecondaryIndexes;
    assert.equal(index.IndexName, DUE_INDEX);
    assert.deepStrictEqual(index.KeySchema, [
      { AttributeName: 'due_shard', KeyType: 'HASH' },
      { AttributeName: 'due_at', KeyType: 'RANGE' },
    ]);
    assert.deepStrictEqual(index.Projection, { ProjectionType: 'INCLUDE', NonKeyAttributes: ['tenant', 'id'] });
    assert.deepStrictEqual(table.Replicas[0].PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: true });
  });

  it('are evaluated every minute by the evaluator, without retries of a missed run', () => {
    const rules = resourcesOfType(s, 'AWS::Events::Rule').filter(([, r]) => r.Properties.ScheduleExpression);
    assert.equal(rules.length, 1);
    const [, rule] = rules[0];
    assert.equal(rule.Properties.ScheduleExpression, 'rate(1 minute)');
    assert.equal(rule.Properties.Targets.length, 1);
    assert.deepStrictEqual(rule.Properties.Targets[0].Arn, { 'Fn::GetAtt': [evaluatorId, 'Arn'] });
    assert.deepStrictEqual(rule.Properties.Targets[0].RetryPolicy, { MaximumEventAgeInSeconds: 60, MaximumRetryAttempts: 0 });
    s.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: evaluatorId },
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 60,
    });
    const fn = s.json.Resources[evaluatorId].Properties;
    assert.equal(fn.Timeout, EVALUATOR_TIMEOUT.toSeconds());
    assert.ok(fn.Timeout < 900);
    assert.deepStrictEqual(fn.Environment.Variables.ALERTS_TABLE, { Ref: tableId });
    assert.equal(fn.Environment.Variables.METRICS_STORE, 'timestream');
  });

  it('the evaluator may read and conditionally write alerts, and read metrics only as each tenant', () => {
    const statements = statementsOf(s, roleOf(s, evaluatorId));
    assert.deepStrictEqual(
      actions(statements),
      [
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
        'sts:AssumeRole',
        'sts:TagSession',
        'xray:PutTelemetryRecords',
        'xray:PutTraceSegments',
      ],
    );
    const dynamo = statements.find((st) => list<string>(st.Action).includes('dynamodb:Query'));
    assert.deepStrictEqual(list(dynamo.Resource), [
      tableArn,
      { 'Fn::Join': ['', [tableArn, `/index/${DUE_INDEX}`]] },
    ]);
    const assume = statements.find((st) => list<string>(st.Action).includes('sts:AssumeRole'));
    const tenantRoleId = logicalId(s, s.stack.queryApi.tenantQueryRole!);
    assert.deepStrictEqual(assume.Resource, { 'Fn::GetAtt': [tenantRoleId, 'Arn'] });
    const vars = s.json.Resources[evaluatorId].Properties.Environment.Variables;
    assert.deepStrictEqual(vars.TENANT_QUERY_ROLE_ARN, { 'Fn::GetAtt': [tenantRoleId, 'Arn'] });
    assert.equal(vars.TENANT_SESSION_TAG, 'tenant');
  });

  it('the query function serves the alert routes from the table, on GET, POST, PUT and DELETE', () => {
    const queryId = logicalId(s, s.stack.functions.query);
    assert.deepStrictEqual(s.json.Resources[queryId].Properties.Environment.Variables.ALERTS_TABLE, { Ref: tableId });
    const routes = resourcesOfType(s, 'AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties.RouteKey).sort();
    assert.deepStrictEqual(routes, ['DELETE /{proxy+}', 'GET /{proxy+}', 'POST /{proxy+}', 'PUT /{proxy+}']);
    for (const [, r] of resourcesOfType(s, 'AWS::ApiGatewayV2::Route')) assert.equal(r.Properties.AuthorizationType, 'JWT');
  });

  it('alarm on evaluator errors, dead-lettered notifications and unreadable windows', () => {
    const alarms = resourcesOfType(s, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    for (const metric of ['AlertsDeadLettered', 'AlertReadFailures']) {
      assert.ok(
        alarms.some(
          (a) =>
            a.Namespace === 'MetricsLake' &&
            a.MetricName === metric &&
            JSON.stringify(a.Dimensions) === JSON.stringify([{ Name: 'Stage', Value: 'alerts' }]) &&
            a.Threshold === 0 &&
            a.ComparisonOperator === 'GreaterThanThreshold',
        ),
        metric,
      );
    }
    assert.ok(
      alarms.some((a) => a.MetricName === 'Errors' && JSON.stringify(a.Dimensions).includes(evaluatorId)),
      'evaluator errors',
    );
  });

  it('prod keeps the table (deletion protection, retained)', () => {
    const p = synth({ stage: 'prod', alarmEmail: 'alarms@example.com' });
    const id = logicalId(p, p.stack.alerts.table);
    assert.equal(p.json.Resources[id].Properties.Replicas[0].DeletionProtectionEnabled, true);
    p.template.hasResource('AWS::DynamoDB::GlobalTable', Match.objectLike({ DeletionPolicy: 'RetainExceptOnCreate' }));
  });

  it('with store=influxdb the evaluator reads with the read token, from the cluster VPC', () => {
    const i = synth(INFLUX_CONTEXT);
    const id = logicalId(i, i.stack.alerts.evaluator);
    const statements = statementsOf(i, roleOf(i, id));
    const secretReads = statements.filter((st) => list(st.Action).includes('secretsmanager:GetSecretValue'));
    assert.ok(secretReads.length > 0);
    for (const st of secretReads) assert.deepStrictEqual(list(st.Resource), [INFLUX_CONTEXT.influxdbReadTokenSecretArn]);
    assert.ok(!actions(statements).some((a) => a.startsWith('timestream:') || a.startsWith('sts:')));
    assert.ok(i.json.Resources[id].Properties.VpcConfig, 'in the VPC');
    assert.equal(i.json.Resources[id].Properties.Environment.Variables.METRICS_STORE, 'influxdb');
  });
});
