import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { readSettings } from '../lib/config';
import { MetricsLakeStack } from '../lib/metrics-lake-stack';

export const ACCOUNT = '111111111111';
export const REGION = 'us-east-1';

export interface Synthesized {
  stack: MetricsLakeStack;
  template: Template;
  json: { Resources: Record<string, { Type: string; Properties?: any; Metadata?: any; DependsOn?: unknown }> };
}

/** store=influxdb against an existing instance, from its VPC (placeholder ids). */
export const INFLUX_CONTEXT: Record<string, string> = {
  store: 'influxdb',
  influxdbUrl: 'https://abc.timestream-influxdb.us-east-1.on.aws:8181',
  influxdbTokenSecretArn: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:influx-AbCdEf',
  influxdbReadTokenSecretArn: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:influx-read-GhIjKl',
  vpcId: 'vpc-0123456789abcdef0',
  subnetIds: 'subnet-0aaaaaaaaaaaaaaa1,subnet-0bbbbbbbbbbbbbbb2',
  securityGroupIds: 'sg-0ccccccccccccccc3',
  routeTableIds: 'rtb-0ddddddddddddddd4,rtb-0eeeeeeeeeeeeeee5',
};

const cache = new Map<string, Synthesized>();

/**
 * Synthesizes the stack as `cdk synth -c …` would, with bundling skipped (no Rust build), on
 * LiveAnalytics unless the context chooses another store (the store has no default).
 */
export function synth(context: Record<string, string> = {}): Synthesized {
  const key = JSON.stringify(context);
  const hit = cache.get(key);
  if (hit) return hit;
  const app = new App({ context: { skipBundling: 'true', store: 'timestream', ...context } });
  const settings = readSettings((k) => app.node.tryGetContext(k));
  const stack = new MetricsLakeStack(app, `metrics-lake-${settings.stage}`, { settings, env: { account: ACCOUNT, region: REGION } });
  const template = Template.fromStack(stack);
  const result = { stack, template, json: template.toJSON() as Synthesized['json'] };
  cache.set(key, result);
  return result;
}

/** Resources of one type, by logical id. */
export function resourcesOfType(s: Synthesized, type: string): [string, { Type: string; Properties?: any; Metadata?: any }][] {
  return Object.entries(s.json.Resources).filter(([, r]) => r.Type === type);
}

/** The logical id CDK gave a construct's CloudFormation resource. */
export function logicalId(s: Synthesized, construct: { node: { defaultChild?: unknown } }): string {
  return s.stack.getLogicalId(construct.node.defaultChild as any);
}

/** Normalizes IAM `Action`/`Resource` to arrays. */
export function list<T>(value: T | T[] | undefined): T[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/** Every IAM statement in the template: identity policies, role inline policies, resource policies. */
export function allStatements(s: Synthesized): { owner: string; kind: string; statement: any }[] {
  const out: { owner: string; kind: string; statement: any }[] = [];
  for (const [id, r] of Object.entries(s.json.Resources)) {
    const p = r.Properties ?? {};
    const docs: [string, any][] = [];
    if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy') docs.push(['identity', p.PolicyDocument]);
    if (r.Type === 'AWS::IAM::Role') for (const inline of p.Policies ?? []) docs.push(['identity', inline.PolicyDocument]);
    if (['AWS::SQS::QueuePolicy', 'AWS::S3::BucketPolicy', 'AWS::SNS::TopicPolicy'].includes(r.Type)) docs.push(['resource', p.PolicyDocument]);
    for (const [kind, doc] of docs) for (const statement of doc?.Statement ?? []) out.push({ owner: id, kind, statement });
  }
  return out;
}
