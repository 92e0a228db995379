// Least privilege: no policy grants a data action on `*`; each function holds only what it
// calls; the query API confines each query to the caller's tenant table (reference §3.10).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allStatements, INFLUX_CONTEXT, list, logicalId, resourcesOfType, synth, type Synthesized } from './helpers';

/** Actions that have no resource type, and so can only be granted on `*`. */
const RESOURCELESS_ACTIONS = new Set([
  'xray:PutTraceSegments',
  'xray:PutTelemetryRecords',
  'timestream:DescribeEndpoints',
  // Queries without a table (`SELECT 1`); cannot read any table.
  'timestream:SelectValues',
]);

const variants: [string, Record<string, string>][] = [
  ['dev', {}],
  ['prod with alarm e-mail and a new bus', { stage: 'prod', alarmEmail: 'alarms@example.com', createEventBus: 'true' }],
  [
    'influxdb with an external issuer',
    {
      ...INFLUX_CONTEXT,
      jwtIssuer: 'https://login.example.com/',
      jwtAudience: 'metrics',
    },
  ],
];

function policyStatementsOf(s: Synthesized, roleId: string): any[] {
  return resourcesOfType(s, 'AWS::IAM::Policy')
    .filter(([, p]) => list(p.Properties.Roles).some((r: any) => r.Ref === roleId))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
}

function roleOf(s: Synthesized, fnId: string): string {
  return s.json.Resources[fnId].Properties.Role['Fn::GetAtt'][0];
}

function actionsOf(statements: any[]): Set<string> {
  return new Set(statements.filter((st) => st.Effect === 'Allow').flatMap((st) => list<string>(st.Action)));
}

describe('no policy grants a data action on *', () => {
  for (const [name, context] of variants) {
    it(name, () => {
      const s = synth(context);
      const statements = allStatements(s);
      assert.ok(statements.length > 20);
      for (const { owner, statement } of statements) {
        if (statement.Effect !== 'Allow') continue;
        const actions = list<string>(statement.Action);
        for (const action of actions) {
          assert.notEqual(action, '*', `${owner}: Action *`);
          assert.ok(!/^[a-z0-9-]+:\*$/.test(action), `${owner}: service-wide ${action}`);
        }
        if (list(statement.Resource).includes('*')) {
          for (const action of actions) assert.ok(RESOURCELESS_ACTIONS.has(action), `${owner}: ${action} on *`);
        }
        assert.equal(statement.NotAction, undefined, `${owner}: NotAction`);
        assert.equal(statement.NotResource, undefined, `${owner}: NotResource`);
      }
    });
  }
});

describe('each function holds only what it calls', () => {
  const s = synth();
  const f = s.stack.functions;
  const ids = {
    enrich: logicalId(s, f.enrich),
    writer: logicalId(s, f.writer),
    forwarder: logicalId(s, f.forwarder),
    query: logicalId(s, f.query),
  };
  const tracing = ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'];
  const alertRoutes = ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'];
  const sqsConsume = ['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueUrl', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'];

  it('enrich: look up tenants', () => {
    const statements = policyStatementsOf(s, roleOf(s, ids.enrich));
    assert.deepStrictEqual([...actionsOf(statements)].sort(), [...tracing, 'dynamodb:BatchGetItem', 'dynamodb:GetItem'].sort());
    const lookup = statements.find((st) => list(st.Action).includes('dynamodb:GetItem'));
    assert.deepStrictEqual(lookup.Resource, { 'Fn::GetAtt': [logicalId(s, s.stack.tenants.table as any), 'Arn'] });
  });

  it('writer: read Data/ and Replay/writer/, write Error/writer/, consume its queue, create and write tables in its database', () => {
    const statements = policyStatementsOf(s, roleOf(s, ids.writer));
    assert.deepStrictEqual(
      [...actionsOf(statements)].sort(),
      [
        ...tracing,
        ...sqsConsume,
        's3:GetObject',
        's3:PutObject',
        's3:AbortMultipartUpload',
        'timestream:DescribeEndpoints',
        'timestream:CreateTable',
        'timestream:DescribeTable',
        'timestream:WriteRecords',
      ].sort(),
    );
    const text = (st: any) => JSON.stringify(st.Resource);
    const get = statements.find((st) => list(st.Action).includes('s3:GetObject'));
    const gets = list(get.Resource).map((r) => JSON.stringify(r));
    assert.equal(gets.length, 2, text(get));
    assert.ok(gets[0].endsWith('"/Data/*"]]}') && gets[1].endsWith('"/Replay/writer/*"]]}'), text(get));
    const put = statements.find((st) => list(st.Action).includes('s3:PutObject'));
    assert.ok(text(put).endsWith('"/Error/writer/*"]]}'), text(put));
    const abort = statements.find((st) => list(st.Action).includes('s3:AbortMultipartUpload'));
    assert.ok(text(abort).endsWith('"/Error/writer/*"]]}'), text(abort));
    const write = statements.find((st) => list(st.Action).includes('timestream:WriteRecords'));
    assert.ok(text(write).includes(':database/metrics-lake-dev/table/*'), text(write));
    for (const st of statements) {
      if (list<string>(st.Action).some((a) => a.startsWith('timestream:') && a !== 'timestream:DescribeEndpoints')) {
        assert.ok(text(st).includes(':database/metrics-lake-dev'), `timestream only in its database: ${text(st)}`);
      }
    }
    const consume = statements.find((st) => list(st.Action).includes('sqs:ReceiveMessage'));
    assert.deepStrictEqual(consume.Resource, { 'Fn::GetAtt': [logicalId(s, f.writerQueue.queue), 'Arn'] });
  });

  it('forwarder: read Data/ and Replay/forwarder/, write Error/forwarder/, consume its queue, read its two secrets', () => {
    const statements = policyStatementsOf(s, roleOf(s, ids.forwarder));
    assert.deepStrictEqual(
      [...actionsOf(statements)].sort(),
      [...tracing, ...sqsConsume, 's3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload', 's3:ListBucket', 'secretsmanager:GetSecretValue'].sort(),
    );
    const objectArns = (action: string) =>
      statements.filter((st) => list(st.Action).includes(action)).flatMap((st) => list(st.Resource)).map((r) => JSON.stringify(r).replace(/^.*"(\/[^"]*)"\]\]\}$/, '$1'));
    assert.deepStrictEqual(objectArns('s3:GetObject').sort(), ['/Data/*', '/Error/forwarder/*', '/Replay/forwarder/*', '/State/forwarder/*']);
    assert.deepStrictEqual(objectArns('s3:PutObject').sort(), ['/Error/forwarder/*', '/State/forwarder/*']);
    assert.deepStrictEqual(objectArns('s3:AbortMultipartUpload'), ['/Error/forwarder/*']);
    const list_ = statements.find((st) => list(st.Action).includes('s3:ListBucket'));
    assert.deepStrictEqual(list_.Resource, { 'Fn::GetAtt': [logicalId(s, s.stack.storage.bucket), 'Arn'] });
    assert.deepStrictEqual(list_.Condition, { StringLike: { 's3:prefix': ['State/forwarder/*'] } });
    const secrets = statements.filter((st) => list(st.Action).includes('secretsmanager:GetSecretValue')).flatMap((st) => list(st.Resource));
    assert.deepStrictEqual(
      secrets.map((r) => JSON.stringify(r)).sort(),
      [f.segmentSecret, f.mixpanelSecret].map((x) => JSON.stringify({ Ref: logicalId(s, x) })).sort(),
    );
  });

  it('query: no Timestream access of its own, only the tenant-query role; the alerts table for the alert routes', () => {
    const statements = policyStatementsOf(s, roleOf(s, ids.query));
    assert.deepStrictEqual(
      [...actionsOf(statements)].sort(),
      [...tracing, 'sts:AssumeRole', 'sts:TagSession', ...alertRoutes].sort(),
    );
    const dynamo = statements.filter((st) => list<string>(st.Action).some((a) => a.startsWith('dynamodb:')));
    assert.deepStrictEqual(dynamo.flatMap((st) => list(st.Resource)), [{ 'Fn::GetAtt': [logicalId(s, s.stack.alerts.table), 'Arn'] }]);
    const assume = statements.find((st) => list(st.Action).includes('sts:AssumeRole'));
    assert.deepStrictEqual(assume.Resource, { 'Fn::GetAtt': [logicalId(s, s.stack.queryApi.tenantQueryRole!), 'Arn'] });
  });
});

describe('tenant isolation for queries (reference §3.10)', () => {
  const s = synth();
  const roleId = logicalId(s, s.stack.queryApi.tenantQueryRole!);
  const queryRoleId = roleOf(s, logicalId(s, s.stack.functions.query));

  it('the tenant-query role may Select only the table named by its own tenant session tag', () => {
    const statements = policyStatementsOf(s, roleId);
    const select = statements.filter((st) => list(st.Action).includes('timestream:Select'));
    assert.equal(select.length, 1);
    assert.deepStrictEqual(list(select[0].Action).sort(), ['timestream:DescribeTable', 'timestream:ListMeasures', 'timestream:Select']);
    assert.deepStrictEqual(select[0].Resource, {
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':timestream:us-east-1:111111111111:database/metrics-lake-dev/table/${aws:PrincipalTag/tenant}']],
    });
    const star = statements.filter((st) => list(st.Resource).includes('*'));
    assert.deepStrictEqual(star.flatMap((st) => list<string>(st.Action)).sort(), ['timestream:DescribeEndpoints', 'timestream:SelectValues']);
    assert.deepStrictEqual([...actionsOf(statements)].sort(), [
      'timestream:DescribeEndpoints',
      'timestream:DescribeTable',
      'timestream:ListMeasures',
      'timestream:Select',
      'timestream:SelectValues',
    ]);
  });

  it('only the query function and the alert evaluator can assume it, and only with exactly one non-empty tenant tag', () => {
    const trust = s.json.Resources[roleId].Properties.AssumeRolePolicyDocument.Statement;
    const evaluatorRoleId = roleOf(s, logicalId(s, s.stack.alerts.evaluator));
    assert.deepStrictEqual(
      trust.map((st: any) => st.Principal),
      [queryRoleId, evaluatorRoleId].map((id) => ({ AWS: { 'Fn::GetAtt': [id, 'Arn'] } })),
    );
    for (const st of trust) {
      assert.deepStrictEqual(list(st.Action).sort(), ['sts:AssumeRole', 'sts:TagSession']);
      assert.deepStrictEqual(st.Condition, {
        StringLike: { 'aws:RequestTag/tenant': '?*' },
        'ForAllValues:StringEquals': { 'aws:TagKeys': ['tenant'] },
      });
    }
    assert.equal(s.json.Resources[roleId].Properties.ManagedPolicyArns, undefined);
  });

  it('the query function is told the role, the tag and the claim', () => {
    const vars = s.json.Resources[logicalId(s, s.stack.functions.query)].Properties.Environment.Variables;
    assert.deepStrictEqual(vars.TENANT_QUERY_ROLE_ARN, { 'Fn::GetAtt': [roleId, 'Arn'] });
    assert.equal(vars.TENANT_SESSION_TAG, 'tenant');
    assert.equal(vars.TENANT_CLAIM, 'custom:tenant_id');
  });

  it('no other principal may Select any Timestream table', () => {
    for (const { owner, statement } of allStatements(s)) {
      if (list<string>(statement.Action).includes('timestream:Select')) {
        assert.deepStrictEqual(list(s.json.Resources[owner].Properties.Roles), [{ Ref: roleId }]);
      }
    }
  });
});

describe('query API', () => {
  it('requires a JWT on every route; by default from a Cognito user pool with an admin-only tenant attribute', () => {
    const s = synth();
    s.template.resourceCountIs('AWS::ApiGatewayV2::Api', 1);
    const [authId, auth] = resourcesOfType(s, 'AWS::ApiGatewayV2::Authorizer')[0];
    assert.equal(auth.Properties.AuthorizerType, 'JWT');
    assert.deepStrictEqual(auth.Properties.IdentitySource, ['$request.header.Authorization']);
    const poolId = logicalId(s, s.stack.queryApi.userPool!);
    const clientId = logicalId(s, s.stack.queryApi.userPoolClient!);
    assert.deepStrictEqual(auth.Properties.JwtConfiguration.Audience, [{ Ref: clientId }]);
    assert.ok(JSON.stringify(auth.Properties.JwtConfiguration.Issuer).includes(poolId));
    const routes = resourcesOfType(s, 'AWS::ApiGatewayV2::Route');
    assert.ok(routes.length > 0);
    for (const [id, r] of routes) {
      assert.equal(r.Properties.AuthorizationType, 'JWT', id);
      assert.deepStrictEqual(r.Properties.AuthorizerId, { Ref: authId }, id);
    }
    const pool = s.json.Resources[poolId].Properties;
    assert.equal(pool.AdminCreateUserConfig.AllowAdminCreateUserOnly, true);
    assert.ok(pool.Schema.some((a: any) => a.Name === 'tenant_id' && a.Mutable === false));
    const client = s.json.Resources[clientId].Properties;
    assert.ok(!client.WriteAttributes.includes('custom:tenant_id'), 'users cannot write their tenant');
  });

  it('signs users in with SRP (browsers) or the admin flow (IAM credentials), and enables no OAuth flow', () => {
    const s = synth();
    const client = s.json.Resources[logicalId(s, s.stack.queryApi.userPoolClient!)].Properties;
    assert.deepStrictEqual([...client.ExplicitAuthFlows].sort(), ['ALLOW_ADMIN_USER_PASSWORD_AUTH', 'ALLOW_REFRESH_TOKEN_AUTH', 'ALLOW_USER_SRP_AUTH']);
    // CDK's default would allow the code and implicit grants with an https://example.com callback.
    assert.equal(client.AllowedOAuthFlowsUserPoolClient, false);
    assert.equal(client.AllowedOAuthFlows, undefined);
    assert.equal(client.CallbackURLs, undefined);
    assert.ok(!JSON.stringify(client).includes('example.com'));
    assert.equal(client.GenerateSecret, false);
  });

  it('uses an external issuer and audience when given', () => {
    const s = synth({ jwtIssuer: 'https://login.example.com/', jwtAudience: 'a,b', tenantClaim: 'org' });
    s.template.resourceCountIs('AWS::Cognito::UserPool', 0);
    s.template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      JwtConfiguration: { Issuer: 'https://login.example.com/', Audience: ['a', 'b'] },
    });
    const vars = s.json.Resources[logicalId(s, s.stack.functions.query)].Properties.Environment.Variables;
    assert.equal(vars.TENANT_CLAIM, 'org');
  });

  it('allows browser calls only from the configured origins (the embeddable chart)', () => {
    const none = synth();
    const [, api] = resourcesOfType(none, 'AWS::ApiGatewayV2::Api')[0];
    assert.equal(api.Properties.CorsConfiguration, undefined, 'no origins: no CORS');
    const s = synth({ queryCorsOrigins: 'https://app.example.com, https://admin.example.com:8443' });
    const [, withCors] = resourcesOfType(s, 'AWS::ApiGatewayV2::Api')[0];
    const cors = withCors.Properties.CorsConfiguration;
    assert.deepStrictEqual(cors.AllowOrigins, ['https://app.example.com', 'https://admin.example.com:8443']);
    assert.deepStrictEqual(cors.AllowMethods, ['GET', 'POST', 'PUT', 'DELETE']);
    assert.ok(cors.AllowHeaders.includes('authorization'));
    assert.equal(cors.AllowCredentials, undefined, 'tokens, not cookies');
    for (const bad of ['*', 'https://*.example.com', 'http://app.example.com', 'https://app.example.com/path']) {
      assert.throws(() => synth({ queryCorsOrigins: bad }), /queryCorsOrigins/, bad);
    }
  });

  it('logs access and throttles the stage', () => {
    const s = synth();
    const [, stage] = resourcesOfType(s, 'AWS::ApiGatewayV2::Stage')[0];
    assert.deepStrictEqual(stage.Properties.AccessLogSettings.DestinationArn, { 'Fn::GetAtt': [logicalId(s, s.stack.queryApi.accessLogs), 'Arn'] });
    assert.ok(stage.Properties.DefaultRouteSettings.ThrottlingRateLimit > 0);
  });
});

describe('store=influxdb: the writer and query roles', () => {
  const s = synth(INFLUX_CONTEXT);
  const f = s.stack.functions;

  for (const [name, fn, secretArn] of [
    ['writer', f.writer, INFLUX_CONTEXT.influxdbTokenSecretArn],
    ['query', f.query, INFLUX_CONTEXT.influxdbReadTokenSecretArn],
  ] as const) {
    it(`${name}: reads only its own token's secret, and holds AWS's VPC-access policy for its network interfaces`, () => {
      const roleId = roleOf(s, logicalId(s, fn));
      const statements = policyStatementsOf(s, roleId);
      const secretReads = statements.filter((st) => list(st.Action).includes('secretsmanager:GetSecretValue'));
      assert.ok(secretReads.length > 0);
      for (const st of secretReads) assert.deepStrictEqual(list(st.Resource), [secretArn]);
      assert.ok(![...actionsOf(statements)].some((a) => a.startsWith('timestream:')));
      const managed = JSON.stringify(s.json.Resources[roleId].Properties.ManagedPolicyArns);
      assert.ok(managed.includes(':iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole'), managed);
    });
  }

  it('enrich and forwarder stay out of the VPC and hold no VPC policy', () => {
    for (const fn of [f.enrich, f.forwarder]) {
      const id = logicalId(s, fn);
      assert.equal(s.json.Resources[id].Properties.VpcConfig, undefined);
      assert.ok(!JSON.stringify(s.json.Resources[roleOf(s, id)].Properties.ManagedPolicyArns ?? []).includes('VPCAccess'));
    }
  });
});
