// The metrics store behind the writer's port. `timestream`: a Timestream for LiveAnalytics
// database (created, or an existing one by name) where the writer may create and write
// tables, and nothing else. `influxdb`: an existing Timestream for InfluxDB instance reached
// with an API token from Secrets Manager, from the instance's VPC (store-network.ts); no
// LiveAnalytics resource or permission at all (LiveAnalytics is closed to accounts that did
// not use it before 20 June 2025).

import { Arn, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as timestream from 'aws-cdk-lib/aws-timestream';
import { Construct } from 'constructs';
import type { InfluxDbSettings, StoreKind } from '../config';
import { skipCfnLint, skipCheckov } from '../suppressions';
import { StoreNetwork } from './store-network';

export interface MetricsStoreProps {
  readonly kind: StoreKind;
  /** Database to create, or the existing one when `existingDatabase` is true. */
  readonly databaseName: string;
  readonly existingDatabase: boolean;
  readonly influxdb?: InfluxDbSettings;
  readonly removalPolicy: RemovalPolicy;
  /** Retention of new tenant databases or buckets, days (store=influxdb). */
  readonly influxdbRetentionDays?: number;
}

export class MetricsStore extends Construct {
  public readonly kind: StoreKind;
  /** LiveAnalytics database name (store=timestream only). */
  public readonly databaseName?: string;
  private readonly influxSecret?: secretsmanager.ISecret;
  private readonly influxReadSecret?: secretsmanager.ISecret;
  private readonly influx?: InfluxDbSettings;
  private readonly influxRetentionDays?: number;
  /** The VPC path to the InfluxDB instance (store=influxdb only). */
  public readonly network?: StoreNetwork;

  constructor(scope: Construct, id: string, props: MetricsStoreProps) {
    super(scope, id);
    this.kind = props.kind;
    if (props.kind === 'timestream') {
      this.databaseName = props.databaseName;
      if (!props.existingDatabase) {
        const db = new timestream.CfnDatabase(this, 'Database', { databaseName: props.databaseName });
        db.applyRemovalPolicy(props.removalPolicy);
        skipCheckov(db, { id: 'CKV_AWS_160', reason: 'Timestream encrypts every database at rest with its AWS-managed KMS key.' });
        const maintenance =
          'LiveAnalytics is in maintenance mode; it is used only when the operator chooses store=timestream (an account that used it before 20 June 2025). Other accounts use store=influxdb.';
        skipCfnLint(db, { id: 'W3697', reason: maintenance });
        Validations.of(db).acknowledge({ id: 'CloudFormation-Validate::W3697', reason: maintenance });
      }
    } else {
      if (!props.influxdb) throw new Error('store=influxdb needs its settings');
      this.influx = props.influxdb;
      this.influxRetentionDays = props.influxdbRetentionDays;
      this.network = new StoreNetwork(this, 'Network', props.influxdb.network);
      this.influxSecret = secretsmanager.Secret.fromSecretCompleteArn(this, 'InfluxToken', props.influxdb.tokenSecretArn);
      this.influxReadSecret = secretsmanager.Secret.fromSecretCompleteArn(this, 'InfluxReadToken', props.influxdb.readTokenSecretArn);
    }
  }

  /** `arn:…:timestream:<region>:<account>:database/<db>`. */
  public databaseArn(): string {
    if (!this.databaseName) throw new Error('no LiveAnalytics database with store=influxdb');
    return Arn.format({ service: 'timestream', resource: 'database', resourceName: this.databaseName }, Stack.of(this));
  }

  /** ARN of a table in the database; `table` may be a policy variable. */
  public tableArn(table: string): string {
    return `${this.databaseArn()}/table/${table}`;
  }

  /** Environment the writer reads to reach the store (names from crates/writer/src/config.rs). */
  public writerEnvironment(): Record<string, string> {
    if (this.kind === 'timestream') {
      return { METRICS_STORE: 'timestream', TIMESTREAM_DATABASE: this.databaseName! };
    }
    return {
      ...this.influxEnvironment(this.influxSecret!),
      ...(this.influxRetentionDays !== undefined ? { INFLUXDB_RETENTION_DAYS: String(this.influxRetentionDays) } : {}),
    };
  }

  /** What both functions need to reach the InfluxDB cluster, with the token in `secret`. */
  private influxEnvironment(secret: secretsmanager.ISecret): Record<string, string> {
    const influx = this.influx!;
    return { METRICS_STORE: 'influxdb', INFLUXDB_URL: influx.url, INFLUXDB_API: influx.api, INFLUXDB_TOKEN_SECRET_ARN: secret.secretArn };
  }

  /** Puts a function that talks to the store where it can reach it (the VPC, for InfluxDB). */
  public placeFunction(fn: lambda.Function): void {
    this.network?.place(fn);
  }

  /**
   * The writer may create, describe and write tables only in this database, and
   * discover endpoints (`DescribeEndpoints` has no resource type, so `*`).
   */
  public grantWrite(grantee: iam.IGrantable): void {
    if (this.kind === 'influxdb') {
      this.influxSecret!.grantRead(grantee);
      return;
    }
    iam.Grant.addToPrincipal({ grantee, actions: ['timestream:DescribeEndpoints'], resourceArns: ['*'] });
    // What crates/store calls: DescribeTable, then CreateTable when a tenant's table is new
    // (authorized on the database), and WriteRecords. The database itself is this stack's.
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['timestream:CreateTable'],
      resourceArns: [this.databaseArn(), this.tableArn('*')],
    });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['timestream:DescribeTable', 'timestream:WriteRecords'],
      resourceArns: [this.tableArn('*')],
    });
  }

  /**
   * Environment for the query function: with InfluxDB, its own read token's secret, never the
   * writer's (crates/query/src/config.rs reads the same variable names).
   */
  public queryEnvironment(): Record<string, string> {
    return this.kind === 'timestream' ? this.writerEnvironment() : this.influxEnvironment(this.influxReadSecret!);
  }

  /** With InfluxDB: the query function may read its read token's secret, and nothing else of the store. */
  public grantQueryToken(grantee: iam.IGrantable): void {
    if (this.kind !== 'influxdb') throw new Error('the query token exists only with store=influxdb');
    this.influxReadSecret!.grantRead(grantee);
  }
}
