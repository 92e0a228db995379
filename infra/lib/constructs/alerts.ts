// Tenants' alerts: the DynamoDB table the alert routes and the evaluator share, the evaluator
// function (crates/query/src/bin/metrics-alert-evaluator.rs) on a one-minute schedule, and the
// permissions each needs and no more. The evaluator reads tenants' metrics the way the query
// function does: with store=timestream it may only assume the tenant-query role with a
// `tenant` session tag, so each alert's read can `Select` only its own tenant's table.

import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { MetricsLakeSettings } from '../config';
import { REASONS, skipCfnLint, skipCheckov } from '../suppressions';
import { TENANT_SESSION_TAG, type QueryApi } from './query-api';
import { RustFunction } from './rust-function';
import type { MetricsStore } from './store';

/** The index the evaluator finds due alerts with (crates/alerts/src/store/dynamodb.rs). */
export const DUE_INDEX = 'due';
/** A run may take this long: reads within the per-tenant budget, then deliveries with retries. */
export const EVALUATOR_TIMEOUT = Duration.seconds(90);
/** The evaluator's CloudWatch namespace and dimension (metrics_query::alerts::report_document). */
export const ALERT_METRICS_NAMESPACE = 'MetricsLake';

export interface AlertsProps {
  readonly settings: MetricsLakeSettings;
  readonly store: MetricsStore;
  readonly queryApi: QueryApi;
  readonly queryFunction: lambda.Function;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  readonly deletionProtection: boolean;
}

export class Alerts extends Construct {
  public readonly table: dynamodb.TableV2;
  public readonly evaluator: lambda.Function;
  public readonly schedule: events.Rule;
  /** Notifications dead lettered, and windows that could not be read (EMF, per minute). */
  public readonly deadLettered: cloudwatch.Metric;
  public readonly readFailures: cloudwatch.Metric;

  constructor(scope: Construct, id: string, props: AlertsProps) {
    super(scope, id);
    const { settings, store } = props;

    // pk t#<tenant>, sk a#<id> | e#<id>#… | count; the `due` index on (due_shard, due_at).
    this.table = new dynamodb.TableV2(this, 'Table', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billing: dynamodb.Billing.onDemand(),
      globalSecondaryIndexes: [
        {
          indexName: DUE_INDEX,
          partitionKey: { name: 'due_shard', type: dynamodb.AttributeType.STRING },
          sortKey: { name: 'due_at', type: dynamodb.AttributeType.NUMBER },
          projectionType: dynamodb.ProjectionType.INCLUDE,
          nonKeyAttributes: ['tenant', 'id'],
        },
      ],
      // Events expire after 30 days: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TTL.html
      timeToLiveAttribute: 'expires_at',
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: props.deletionProtection,
      removalPolicy: props.removalPolicy,
    });
    skipCheckov(this.table, { id: 'CKV_AWS_119', reason: `${REASONS.awsManagedEncryption} Alert items hold webhook signing secrets, which the DynamoDB-owned key encrypts at rest like every item.` });

    this.evaluator = new RustFunction(this, 'Evaluator', {
      binary: 'metrics-alert-evaluator',
      description: "Evaluates tenants' alerts every minute and sends signed webhooks, each transition once",
      memorySize: 256,
      timeout: EVALUATOR_TIMEOUT,
      environment: {
        ...store.queryEnvironment(),
        ALERTS_TABLE: this.table.tableName,
        ALERTS_CONCURRENCY: '8',
        ALERTS_TENANT_BUDGET_SECS: '20',
      },
      logRetention: props.logRetention,
      removalPolicy: props.removalPolicy,
      codeSource: settings.lambdaCode,
      workspaceRoot: settings.workspaceRoot,
      asyncInvocation:
        'Invoked by a one-minute schedule with no retries: the next run evaluates whatever this one missed (due alerts stay due, claimed notifications are taken over), so a failed event has nothing to keep.',
    }).function;
    store.placeFunction(this.evaluator);
    // A missed run is made good by the next one: no retry, no stale events.
    this.evaluator.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(1) });

    this.schedule = new events.Rule(this, 'Schedule', {
      description: "Runs the alert evaluator every minute",
      schedule: events.Schedule.rate(Duration.minutes(1)),
      targets: [new targets.LambdaFunction(this.evaluator, { retryAttempts: 0, maxEventAge: Duration.minutes(1) })],
    });
    const missedRun =
      'A missed evaluator run needs no keeping: the next run, a minute later, evaluates every alert still due and takes over any notification left claimed.';
    skipCfnLint(this.schedule, { id: 'ES4000', reason: `The schedule's target has no dead-letter queue. ${missedRun}` });
    // CDK puts the rule's invoke permission under the rule.
    const permission = this.schedule.node.findAll().find((c): c is lambda.CfnPermission => c instanceof lambda.CfnPermission);
    if (!permission) throw new Error('no invoke permission for the alert schedule');
    skipCfnLint(permission, { id: 'ES1007', reason: `The evaluator's asynchronous invocations have no on-failure destination. ${missedRun}` });

    // The evaluator: find due alerts, read and conditionally write each, add its events.
    iam.Grant.addToPrincipal({
      grantee: this.evaluator,
      actions: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem', 'dynamodb:PutItem'],
      resourceArns: [this.table.tableArn, `${this.table.tableArn}/index/${DUE_INDEX}`],
    });
    // The query function: the alert routes. A transaction needs the actions of its items:
    // https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html
    iam.Grant.addToPrincipal({
      grantee: props.queryFunction,
      actions: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
      resourceArns: [this.table.tableArn],
    });
    props.queryFunction.addEnvironment('ALERTS_TABLE', this.table.tableName);

    // Reading tenants' metrics: exactly as the query function does.
    const tenantRole = props.queryApi.tenantQueryRole;
    if (store.kind === 'timestream' && tenantRole) {
      tenantRole.assumeRolePolicy!.addStatements(
        new iam.PolicyStatement({
          actions: ['sts:AssumeRole', 'sts:TagSession'],
          principals: [new iam.ArnPrincipal(this.evaluator.role!.roleArn)],
          conditions: {
            StringLike: { [`aws:RequestTag/${TENANT_SESSION_TAG}`]: '?*' },
            'ForAllValues:StringEquals': { 'aws:TagKeys': [TENANT_SESSION_TAG] },
          },
        }),
      );
      iam.Grant.addToPrincipal({
        grantee: this.evaluator,
        actions: ['sts:AssumeRole', 'sts:TagSession'],
        resourceArns: [tenantRole.roleArn],
      });
      this.evaluator.addEnvironment('TENANT_QUERY_ROLE_ARN', tenantRole.roleArn);
      this.evaluator.addEnvironment('TENANT_SESSION_TAG', TENANT_SESSION_TAG);
    } else {
      store.grantQueryToken(this.evaluator);
    }

    const metric = (metricName: string) =>
      new cloudwatch.Metric({
        namespace: ALERT_METRICS_NAMESPACE,
        metricName,
        dimensionsMap: { Stage: 'alerts' },
        statistic: 'Sum',
        period: Duration.minutes(5),
      });
    this.deadLettered = metric('AlertsDeadLettered');
    this.readFailures = metric('AlertReadFailures');
  }
}
