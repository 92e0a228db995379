// Deployment settings, read from CDK context (`cdk deploy -c key=value` or `cdk.json`). Every
// key is listed in README.md. Values given on the command line arrive as strings.

import * as path from 'node:path';
import { DEFAULT_RULES_FILE } from './rules';

export type Stage = 'dev' | 'prod';
/** Where the writer keeps time series. `influxdb` targets an existing Timestream for InfluxDB. */
export type StoreKind = 'timestream' | 'influxdb';
/**
 * How Lambda code is packaged: `cargo-lambda` builds each binary during synth with
 * cargo-lambda-cdk (locally, or in Docker when cargo-lambda is missing); `prebuilt` zips
 * `target/lambda/<binary>/` left by `cargo lambda build --release --arm64`.
 */
export type LambdaCodeSource = 'cargo-lambda' | 'prebuilt';

/**
 * The API the instance speaks (writer and query `INFLUXDB_API`). Only InfluxDB 3: the query
 * function speaks only its SQL API (`/api/v3/query_sql`), so `v2` is refused at synth.
 */
export type InfluxDbApi = 'v3';

/** Where the writer and query functions run to reach a Timestream for InfluxDB instance. */
export interface StoreNetworkSettings {
  readonly vpcId: string;
  /** Private subnets for the functions, in the instance's VPC. */
  readonly subnetIds: string[];
  /** Security groups for the functions: ones the instance's security group admits. */
  readonly securityGroupIds: string[];
  /**
   * An S3 gateway endpoint on these route tables (the writer reads objects and writes dead
   * letters). Absent when the VPC has one already (a second one for the same route tables
   * fails) or a NAT gateway.
   */
  readonly s3GatewayEndpoint?: { readonly routeTableIds: string[] };
  /**
   * A Secrets Manager interface endpoint in these subnets, at most one per Availability Zone
   * (the functions read the tokens). Absent when the VPC has one already or a NAT gateway.
   */
  readonly secretsManagerEndpoint?: { readonly subnetIds: string[] };
}

export interface InfluxDbSettings {
  /** HTTPS endpoint of the Timestream for InfluxDB instance, e.g. `https://<id>.timestream-influxdb.<region>.on.aws:8086`. */
  readonly url: string;
  /** Complete ARN of the secret holding the writer's token (creates databases, writes every tenant). */
  readonly tokenSecretArn: string;
  /**
   * Complete ARN of the secret holding the query function's token: read-only where the engine
   * offers it, bare or `{"token", "tenants": {"<tenant>": "<token>"}}` (crates/query/README.md).
   */
  readonly readTokenSecretArn: string;
  readonly api: InfluxDbApi;
  readonly network: StoreNetworkSettings;
}

export interface ReservedConcurrency {
  readonly enrich?: number;
  readonly writer?: number;
  readonly forwarder?: number;
  readonly query?: number;
}

export interface MetricsLakeSettings {
  readonly stage: Stage;
  /** Existing bus for every rule, overriding the bus named in the rendered rules. */
  readonly eventBusName?: string;
  /** Create a bus `metrics-lake-<stage>` and put every rule on it. */
  readonly createEventBus: boolean;
  /** Existing DynamoDB tenant directory (partition key `tenant_id`, attribute `name`). */
  readonly tenantsTableName?: string;
  readonly store: StoreKind;
  /** Existing Timestream LiveAnalytics database; otherwise one is created. */
  readonly timestreamDatabaseName?: string;
  readonly influxdb?: InfluxDbSettings;
  /** Subscribe this address to a new alarm topic. */
  readonly alarmEmail?: string;
  /** Send alarms to this existing SNS topic. */
  readonly alarmTopicArn?: string;
  /** JWT issuer (e.g. an OIDC provider); without it, a Cognito user pool is created. */
  readonly jwtIssuer?: string;
  readonly jwtAudience: string[];
  /** JWT claim that carries the tenant id. */
  readonly tenantClaim?: string;
  /** Origins whose pages may call the query API from a browser (the embeddable chart); none: no CORS. */
  readonly queryCorsOrigins: string[];
  readonly reservedConcurrency: ReservedConcurrency;
  /** The account's Lambda concurrency limit (`aws lambda get-account-settings`), to check reservations against. */
  readonly lambdaConcurrencyLimit: number;
  /** SQS event-source `MaximumConcurrency` for the writer and forwarder. */
  readonly writerMaxConcurrency: number;
  readonly forwarderMaxConcurrency: number;
  readonly lambdaCode: LambdaCodeSource;
  /** Skip asset bundling (tests and offline checks): no cargo-lambda, no Rust build. */
  readonly skipBundling: boolean;
  /** Cargo workspace root (holds `Cargo.toml` and `target/lambda/`). */
  readonly workspaceRoot: string;
  readonly rulesFile: string;
  /** Retention of new tenant tables (writer `MEMORY_RETENTION_HOURS`, `MAGNETIC_RETENTION_DAYS`). */
  readonly memoryRetentionHours: number;
  readonly magneticRetentionDays: number;
  /**
   * Whether the metric rules match events. `false` deploys them disabled: nothing enters the
   * pipeline until the tenant directory is loaded (the first deploy of a new stack).
   */
  readonly rulesEnabled: boolean;
  /** Forward to Segment / Mixpanel (`SEGMENT_ENABLED` / `MIXPANEL_ENABLED`). */
  readonly forwardToSegment: boolean;
  readonly forwardToMixpanel: boolean;
  /** Segment ingestion host (EU workspaces use Segment's EU host); default: the crate's. */
  readonly segmentEndpoint?: string;
  /** Mixpanel data residency (`us`, `eu`, `in`), which picks the Mixpanel host. */
  readonly mixpanelResidency?: 'us' | 'eu' | 'in';
  /** Mixpanel project id, when the secret does not hold it. */
  readonly mixpanelProjectId?: string;
  /** Days raw `Data/` objects are kept (0 = forever). */
  readonly rawDataRetentionDays: number;
  /** Days `Error/` objects are kept. */
  readonly errorRetentionDays: number;
}

/** Reads one context value. */
export type ContextReader = (key: string) => unknown;

/** Keys that only store=influxdb reads. */
const INFLUXDB_KEYS = [
  'influxdbUrl',
  'influxdbTokenSecretArn',
  'influxdbReadTokenSecretArn',
  'influxdbApi',
  'influxdbOrg',
  'vpcId',
  'subnetIds',
  'securityGroupIds',
  'routeTableIds',
  'vpcEndpoints',
  's3Endpoint',
  'secretsManagerEndpoint',
  'endpointSubnetIds',
] as const;

/** Every context key the app reads; unknown keys are rejected to catch typos. */
export const CONTEXT_KEYS = [
  'stage',
  'eventBusName',
  'createEventBus',
  'tenantsTableName',
  'store',
  'timestreamDatabaseName',
  ...INFLUXDB_KEYS,
  'alarmEmail',
  'alarmTopicArn',
  'jwtIssuer',
  'jwtAudience',
  'tenantClaim',
  'queryCorsOrigins',
  'enrichReservedConcurrency',
  'writerReservedConcurrency',
  'forwarderReservedConcurrency',
  'queryReservedConcurrency',
  'lambdaConcurrencyLimit',
  'writerMaxConcurrency',
  'forwarderMaxConcurrency',
  'lambdaCode',
  'skipBundling',
  'rulesFile',
  'rawDataRetentionDays',
  'errorRetentionDays',
  'memoryRetentionHours',
  'magneticRetentionDays',
  'rulesEnabled',
  'forwardToSegment',
  'forwardToMixpanel',
  'segmentEndpoint',
  'mixpanelResidency',
  'mixpanelProjectId',
] as const;

export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingsError';
  }
}

function str(read: ContextReader, key: string): string | undefined {
  const value = read(key);
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new SettingsError(`context ${key} must be a string, got ${JSON.stringify(value)}`);
  return value.trim();
}

function bool(read: ContextReader, key: string, fallback: boolean): boolean {
  const value = read(key);
  if (value === undefined || value === null || value === '') return fallback;
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new SettingsError(`context ${key} must be true or false, got ${JSON.stringify(value)}`);
}

function int(read: ContextReader, key: string, min: number, max: number): number | undefined {
  const value = read(key);
  if (value === undefined || value === null || value === '') return undefined;
  const n = typeof value === 'number' ? value : Number(String(value).trim());
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new SettingsError(`context ${key} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

function oneOf<T extends string>(read: ContextReader, key: string, allowed: readonly T[], fallback: T): T {
  const value = str(read, key) ?? fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new SettingsError(`context ${key} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

const NAME = /^[A-Za-z0-9._-]{1,256}$/;
const TIMESTREAM_NAME = /^[A-Za-z0-9_.-]{3,256}$/;

/** Builds the settings from context, with defaults, and checks combinations. */
export function readSettings(read: ContextReader, workspaceRoot = path.resolve(__dirname, '..', '..')): MetricsLakeSettings {
  const stage = oneOf(read, 'stage', ['dev', 'prod'] as const, 'dev');
  const eventBusName = str(read, 'eventBusName');
  const createEventBus = bool(read, 'createEventBus', false);
  if (eventBusName && createEventBus) throw new SettingsError('set eventBusName (an existing bus) or createEventBus=true, not both');
  if (eventBusName && !NAME.test(eventBusName)) throw new SettingsError(`eventBusName ${JSON.stringify(eventBusName)} is not a bus name`);

  const tenantsTableName = str(read, 'tenantsTableName');
  if (tenantsTableName && !/^[A-Za-z0-9_.-]{3,255}$/.test(tenantsTableName)) {
    throw new SettingsError(`tenantsTableName ${JSON.stringify(tenantsTableName)} is not a DynamoDB table name`);
  }

  const store = requiredStore(read);
  const timestreamDatabaseName = str(read, 'timestreamDatabaseName');
  if (timestreamDatabaseName && !TIMESTREAM_NAME.test(timestreamDatabaseName)) {
    throw new SettingsError(`timestreamDatabaseName must be 3-256 characters of [A-Za-z0-9_.-]`);
  }
  let influxdb: InfluxDbSettings | undefined;
  if (store === 'influxdb') {
    if (timestreamDatabaseName) throw new SettingsError('timestreamDatabaseName applies only to store=timestream');
    influxdb = readInfluxDb(read);
  } else {
    const stray = INFLUXDB_KEYS.filter((key) => str(read, key) !== undefined);
    if (stray.length > 0) throw new SettingsError(`${stray.join(', ')} apply only to store=influxdb`);
  }

  const alarmEmail = str(read, 'alarmEmail');
  const alarmTopicArn = str(read, 'alarmTopicArn');
  if (alarmEmail && alarmTopicArn) throw new SettingsError('set alarmEmail (a new topic) or alarmTopicArn (an existing one), not both');
  if (alarmEmail && !/^[^@\s]+@[^@\s]+$/.test(alarmEmail)) throw new SettingsError('alarmEmail is not an e-mail address');
  if (alarmTopicArn && !/^arn:aws[a-z-]*:sns:/.test(alarmTopicArn)) throw new SettingsError('alarmTopicArn must be an SNS topic ARN');

  const jwtIssuer = str(read, 'jwtIssuer');
  const jwtAudience = (str(read, 'jwtAudience') ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (jwtIssuer && !/^https:\/\//.test(jwtIssuer)) throw new SettingsError('jwtIssuer must be an https:// URL');
  if (jwtIssuer && jwtAudience.length === 0) throw new SettingsError('jwtIssuer needs jwtAudience (comma-separated client ids or audiences)');
  if (!jwtIssuer && jwtAudience.length > 0) throw new SettingsError('jwtAudience applies only with jwtIssuer');
  const tenantClaim = str(read, 'tenantClaim');
  if (tenantClaim && !/^[A-Za-z0-9_:.-]{1,128}$/.test(tenantClaim)) throw new SettingsError('tenantClaim is not a claim name');
  const queryCorsOrigins = (str(read, 'queryCorsOrigins') ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  for (const origin of queryCorsOrigins) {
    // Exact origins only: a wildcard would let any page spend a signed-in customer's token.
    if (!/^https:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?$/.test(origin) && !/^http:\/\/localhost(:[0-9]{1,5})?$/.test(origin)) {
      throw new SettingsError(`queryCorsOrigins: ${origin} is not an https:// origin (scheme, host and port only)`);
    }
  }

  const concurrency = (key: string) => int(read, key, 1, 10000);
  const reservedConcurrency: ReservedConcurrency = {
    enrich: concurrency('enrichReservedConcurrency'),
    writer: concurrency('writerReservedConcurrency'),
    forwarder: concurrency('forwarderReservedConcurrency'),
    query: concurrency('queryReservedConcurrency'),
  };
  const lambdaConcurrencyLimit = int(read, 'lambdaConcurrencyLimit', 1, 1_000_000) ?? DEFAULT_LAMBDA_CONCURRENCY_LIMIT;
  checkReservations(reservedConcurrency, lambdaConcurrencyLimit);
  const segmentEndpoint = str(read, 'segmentEndpoint');
  if (segmentEndpoint && !/^https:\/\/[^/?#]+/.test(segmentEndpoint)) throw new SettingsError('segmentEndpoint must be an https:// URL');
  const residency = str(read, 'mixpanelResidency');
  if (residency && !['us', 'eu', 'in'].includes(residency)) throw new SettingsError('mixpanelResidency must be us, eu or in');
  const mixpanelProjectId = str(read, 'mixpanelProjectId');
  if (mixpanelProjectId && !/^[0-9]{1,20}$/.test(mixpanelProjectId)) throw new SettingsError('mixpanelProjectId must be a number');
  const rulesFile = str(read, 'rulesFile');

  return {
    stage,
    eventBusName,
    createEventBus,
    tenantsTableName,
    store,
    timestreamDatabaseName,
    influxdb,
    alarmEmail,
    alarmTopicArn,
    jwtIssuer,
    jwtAudience,
    tenantClaim,
    queryCorsOrigins,
    reservedConcurrency,
    lambdaConcurrencyLimit,
    // SQS event sources accept 2-1000.
    writerMaxConcurrency: int(read, 'writerMaxConcurrency', 2, 1000) ?? 5,
    forwarderMaxConcurrency: int(read, 'forwarderMaxConcurrency', 2, 1000) ?? 5,
    lambdaCode: oneOf(read, 'lambdaCode', ['cargo-lambda', 'prebuilt'] as const, 'cargo-lambda'),
    skipBundling: bool(read, 'skipBundling', false),
    workspaceRoot,
    rulesFile: rulesFile ? path.resolve(rulesFile) : DEFAULT_RULES_FILE,
    // The writer's limits (Timestream's): memory 1-8766 h, magnetic 1-73000 days.
    memoryRetentionHours: int(read, 'memoryRetentionHours', 1, 8766) ?? 14 * 24,
    magneticRetentionDays: int(read, 'magneticRetentionDays', 1, 73000) ?? 365,
    rulesEnabled: bool(read, 'rulesEnabled', true),
    forwardToSegment: bool(read, 'forwardToSegment', true),
    forwardToMixpanel: bool(read, 'forwardToMixpanel', true),
    segmentEndpoint,
    mixpanelResidency: residency as MetricsLakeSettings['mixpanelResidency'],
    mixpanelProjectId,
    rawDataRetentionDays: int(read, 'rawDataRetentionDays', 0, 36500) ?? 365,
    errorRetentionDays: int(read, 'errorRetentionDays', 1, 36500) ?? 90,
  };
}

/** The context key `store` has no default: LiveAnalytics fails for most new accounts, InfluxDB needs an instance. */
function requiredStore(read: ContextReader): StoreKind {
  if (str(read, 'store') === undefined) {
    throw new SettingsError(
      'choose the store: -c store=influxdb (any account; an InfluxDB 3 instance, see infra/README.md) or -c store=timestream (only accounts that used Timestream for LiveAnalytics before 20 June 2025)',
    );
  }
  return oneOf(read, 'store', ['timestream', 'influxdb'] as const, 'influxdb');
}

/**
 * A secret's complete ARN ends in `-` and the six random characters Secrets Manager appends to
 * the name; a partial ARN (without them) cannot be used in IAM policies as an exact resource.
 * https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_iam-permissions.html#iam-resources
 */
const COMPLETE_SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$/;

function secretArn(read: ContextReader, key: string): string {
  const arn = str(read, key);
  if (!arn) throw new SettingsError(`store=influxdb needs ${key}`);
  if (!COMPLETE_SECRET_ARN.test(arn)) {
    throw new SettingsError(
      `${key} must be the secret's complete ARN, ending in the 6-character suffix Secrets Manager adds to the name (arn:aws:secretsmanager:<region>:<account>:secret:<name>-AbCdEf); get it with \`aws secretsmanager describe-secret --secret-id <name> --query ARN --output text\``,
    );
  }
  return arn;
}

function readInfluxDb(read: ContextReader): InfluxDbSettings {
  const url = str(read, 'influxdbUrl');
  if (!url) throw new SettingsError('store=influxdb needs influxdbUrl (the instance endpoint, https://<endpoint>:<port>)');
  if (!/^https:\/\//.test(url)) throw new SettingsError('influxdbUrl must start with https://');
  // The query function speaks only InfluxDB 3's SQL API; on InfluxDB 2 every chart would be
  // empty (a v2 404 reads as "no database"), so v2 is refused here rather than at run time.
  if (str(read, 'influxdbApi') === 'v2') {
    throw new SettingsError(
      'influxdbApi=v2 is not supported: the query API reads only InfluxDB 3 (/api/v3/query_sql), so every tenant would get empty charts from an InfluxDB 2 instance. Use an InfluxDB 3 instance (influxdbApi=v3, the default).',
    );
  }
  const api = oneOf(read, 'influxdbApi', ['v3'] as const, 'v3');
  if (str(read, 'influxdbOrg') !== undefined) throw new SettingsError('influxdbOrg applies only to InfluxDB 2 (influxdbApi=v2), which the stack does not support');
  const tokenSecretArn = secretArn(read, 'influxdbTokenSecretArn');
  const readTokenSecretArn = secretArn(read, 'influxdbReadTokenSecretArn');
  if (readTokenSecretArn === tokenSecretArn) {
    throw new SettingsError(
      "influxdbReadTokenSecretArn must be a secret of its own: the query function must not receive the writer's token (give it a read-only token where the engine offers one)",
    );
  }
  return { url, tokenSecretArn, readTokenSecretArn, api, network: readNetwork(read) };
}

/** Comma-separated ids matching `pattern`. */
function ids(read: ContextReader, key: string, pattern: RegExp): string[] {
  const list = (str(read, key) ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  for (const id of list) if (!pattern.test(id)) throw new SettingsError(`${key}: ${JSON.stringify(id)} is not a valid id`);
  if (new Set(list).size !== list.length) throw new SettingsError(`${key} lists an id twice`);
  return list;
}

/**
 * The instance runs in a VPC (reference §4), so the writer and query functions must too: its
 * subnets and security groups, plus the endpoints they need (S3 for the writer's objects,
 * Secrets Manager for the tokens) unless the VPC has them or a NAT gateway. Each endpoint is
 * optional on its own: a VPC may have one and not the other, and a second S3 gateway endpoint
 * for the same route tables fails to create.
 */
function readNetwork(read: ContextReader): StoreNetworkSettings {
  const vpcId = str(read, 'vpcId');
  const subnetIds = ids(read, 'subnetIds', SUBNET_ID);
  const securityGroupIds = ids(read, 'securityGroupIds', /^sg-[0-9a-f]{8,17}$/);
  const routeTableIds = ids(read, 'routeTableIds', /^rtb-[0-9a-f]{8,17}$/);
  const endpointSubnetIds = ids(read, 'endpointSubnetIds', SUBNET_ID);
  if (!vpcId || subnetIds.length === 0 || securityGroupIds.length === 0) {
    throw new SettingsError(
      'store=influxdb runs the writer and query functions in the instance\'s VPC: set vpcId, subnetIds and securityGroupIds (comma-separated)',
    );
  }
  if (!/^vpc-[0-9a-f]{8,17}$/.test(vpcId)) throw new SettingsError(`vpcId ${JSON.stringify(vpcId)} is not a VPC id`);
  const both = bool(read, 'vpcEndpoints', true);
  const s3 = bool(read, 's3Endpoint', both);
  const secrets = bool(read, 'secretsManagerEndpoint', both);
  if (s3 && routeTableIds.length === 0) {
    throw new SettingsError(
      's3Endpoint=true (the default) needs routeTableIds for the S3 gateway endpoint; set s3Endpoint=false when the VPC has an S3 gateway endpoint on those route tables already, or a NAT gateway',
    );
  }
  if (!s3 && routeTableIds.length > 0) throw new SettingsError('routeTableIds applies only with s3Endpoint=true');
  if (!secrets && endpointSubnetIds.length > 0) throw new SettingsError('endpointSubnetIds applies only with secretsManagerEndpoint=true');
  return {
    vpcId,
    subnetIds,
    securityGroupIds,
    s3GatewayEndpoint: s3 ? { routeTableIds } : undefined,
    // An interface endpoint takes at most one subnet per Availability Zone.
    secretsManagerEndpoint: secrets ? { subnetIds: endpointSubnetIds.length > 0 ? endpointSubnetIds : subnetIds } : undefined,
  };
}

const SUBNET_ID = /^subnet-[0-9a-f]{8,17}$/;

/**
 * Lambda keeps 100 executions of the account's concurrency limit unreserved, so reservations
 * may add up to at most limit - 100; new accounts can have a limit far below the default 1,000,
 * and then reject any reservation.
 * https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
 * https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
 */
export const DEFAULT_LAMBDA_CONCURRENCY_LIMIT = 1000;
export const UNRESERVED_CONCURRENCY_MINIMUM = 100;

function checkReservations(reserved: ReservedConcurrency, limit: number): void {
  const total = Object.values(reserved).reduce((sum: number, n) => sum + (n ?? 0), 0);
  if (total > 0 && total > limit - UNRESERVED_CONCURRENCY_MINIMUM) {
    throw new SettingsError(
      `the *ReservedConcurrency values reserve ${total} executions, but Lambda keeps ${UNRESERVED_CONCURRENCY_MINIMUM} of the account's ${limit} unreserved, so at most ${Math.max(0, limit - UNRESERVED_CONCURRENCY_MINIMUM)} can be reserved. Check the account's limit with \`aws lambda get-account-settings --query AccountLimit.ConcurrentExecutions\` and pass it as -c lambdaConcurrencyLimit=<n> (default ${DEFAULT_LAMBDA_CONCURRENCY_LIMIT}); reserve less, or request a quota increase first.`,
    );
  }
}

/** Context keys set but not understood (typos), ignoring CDK's own `aws:`/`@aws-cdk` keys. */
export function unknownContextKeys(keys: string[]): string[] {
  const known = new Set<string>(CONTEXT_KEYS);
  return keys.filter((key) => !known.has(key) && !key.startsWith('aws:') && !key.startsWith('@aws-cdk') && !key.startsWith('cdk'));
}
