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

/** The write API the instance speaks (writer `INFLUXDB_API`). */
export type InfluxDbApi = 'v3' | 'v2';

/** Where the writer and query functions run to reach a Timestream for InfluxDB instance. */
export interface StoreNetworkSettings {
  readonly vpcId: string;
  /** Private subnets for the functions (and the Secrets Manager endpoint), in the instance's VPC. */
  readonly subnetIds: string[];
  /** Security groups for the functions: ones the instance's security group admits. */
  readonly securityGroupIds: string[];
  /**
   * Create the endpoints the functions need without a NAT gateway: an S3 gateway endpoint on
   * `routeTableIds` and a Secrets Manager interface endpoint in `subnetIds`. Off when the VPC
   * already has them or a NAT gateway.
   */
  readonly createEndpoints: boolean;
  readonly routeTableIds: string[];
}

export interface InfluxDbSettings {
  /** HTTPS endpoint of the Timestream for InfluxDB instance, e.g. `https://<id>.timestream-influxdb.<region>.on.aws:8086`. */
  readonly url: string;
  /** Secrets Manager secret holding the InfluxDB API token. */
  readonly tokenSecretArn: string;
  readonly api: InfluxDbApi;
  /** InfluxDB 2 organization (api=v2 only). */
  readonly org?: string;
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

/** Every context key the app reads; unknown keys are rejected to catch typos. */
export const CONTEXT_KEYS = [
  'stage',
  'eventBusName',
  'createEventBus',
  'tenantsTableName',
  'store',
  'timestreamDatabaseName',
  'influxdbUrl',
  'influxdbTokenSecretArn',
  'influxdbApi',
  'influxdbOrg',
  'vpcId',
  'subnetIds',
  'securityGroupIds',
  'routeTableIds',
  'vpcEndpoints',
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
  'writerMaxConcurrency',
  'forwarderMaxConcurrency',
  'lambdaCode',
  'skipBundling',
  'rulesFile',
  'rawDataRetentionDays',
  'errorRetentionDays',
  'memoryRetentionHours',
  'magneticRetentionDays',
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

  const store = oneOf(read, 'store', ['timestream', 'influxdb'] as const, 'timestream');
  const timestreamDatabaseName = str(read, 'timestreamDatabaseName');
  if (timestreamDatabaseName && !TIMESTREAM_NAME.test(timestreamDatabaseName)) {
    throw new SettingsError(`timestreamDatabaseName must be 3-256 characters of [A-Za-z0-9_.-]`);
  }
  const influxdbUrl = str(read, 'influxdbUrl');
  const influxdbTokenSecretArn = str(read, 'influxdbTokenSecretArn');
  let influxdb: InfluxDbSettings | undefined;
  if (store === 'influxdb') {
    if (timestreamDatabaseName) throw new SettingsError('timestreamDatabaseName applies only to store=timestream');
    if (!influxdbUrl || !influxdbTokenSecretArn) {
      throw new SettingsError('store=influxdb needs influxdbUrl (the instance endpoint) and influxdbTokenSecretArn (the secret holding its API token)');
    }
    if (!/^https:\/\//.test(influxdbUrl)) throw new SettingsError('influxdbUrl must start with https://');
    if (!/^arn:aws[a-z-]*:secretsmanager:/.test(influxdbTokenSecretArn)) throw new SettingsError('influxdbTokenSecretArn must be a Secrets Manager secret ARN');
    const api = oneOf(read, 'influxdbApi', ['v3', 'v2'] as const, 'v3');
    const org = str(read, 'influxdbOrg');
    if (api === 'v2' && !org) throw new SettingsError('influxdbApi=v2 needs influxdbOrg (the InfluxDB 2 organization)');
    if (api === 'v3' && org) throw new SettingsError('influxdbOrg applies only to influxdbApi=v2');
    influxdb = { url: influxdbUrl, tokenSecretArn: influxdbTokenSecretArn, api, org, network: readNetwork(read) };
  } else {
    const stray = ['influxdbUrl', 'influxdbTokenSecretArn', 'influxdbApi', 'influxdbOrg', 'vpcId', 'subnetIds', 'securityGroupIds', 'routeTableIds', 'vpcEndpoints'].filter(
      (key) => str(read, key) !== undefined,
    );
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
    reservedConcurrency: {
      enrich: concurrency('enrichReservedConcurrency'),
      writer: concurrency('writerReservedConcurrency'),
      forwarder: concurrency('forwarderReservedConcurrency'),
      query: concurrency('queryReservedConcurrency'),
    },
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
    forwardToSegment: bool(read, 'forwardToSegment', true),
    forwardToMixpanel: bool(read, 'forwardToMixpanel', true),
    segmentEndpoint,
    mixpanelResidency: residency as MetricsLakeSettings['mixpanelResidency'],
    mixpanelProjectId,
    rawDataRetentionDays: int(read, 'rawDataRetentionDays', 0, 36500) ?? 365,
    errorRetentionDays: int(read, 'errorRetentionDays', 1, 36500) ?? 90,
  };
}

/** Comma-separated ids matching `pattern`. */
function ids(read: ContextReader, key: string, pattern: RegExp): string[] {
  const list = (str(read, key) ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  for (const id of list) if (!pattern.test(id)) throw new SettingsError(`${key}: ${JSON.stringify(id)} is not a valid id`);
  return list;
}

/**
 * The instance runs in a VPC (reference §4), so the writer and query functions must too: its
 * subnets and security groups, plus the endpoints they need (S3 for the writer's objects,
 * Secrets Manager for the token) unless the VPC has them or a NAT gateway.
 */
function readNetwork(read: ContextReader): StoreNetworkSettings {
  const vpcId = str(read, 'vpcId');
  const subnetIds = ids(read, 'subnetIds', /^subnet-[0-9a-f]{8,17}$/);
  const securityGroupIds = ids(read, 'securityGroupIds', /^sg-[0-9a-f]{8,17}$/);
  const routeTableIds = ids(read, 'routeTableIds', /^rtb-[0-9a-f]{8,17}$/);
  const createEndpoints = bool(read, 'vpcEndpoints', true);
  if (!vpcId || subnetIds.length === 0 || securityGroupIds.length === 0) {
    throw new SettingsError(
      'store=influxdb runs the writer and query functions in the instance\'s VPC: set vpcId, subnetIds and securityGroupIds (comma-separated)',
    );
  }
  if (!/^vpc-[0-9a-f]{8,17}$/.test(vpcId)) throw new SettingsError(`vpcId ${JSON.stringify(vpcId)} is not a VPC id`);
  if (createEndpoints && routeTableIds.length === 0) {
    throw new SettingsError('vpcEndpoints=true (the default) needs routeTableIds for the S3 gateway endpoint; or set vpcEndpoints=false when the VPC has a NAT gateway or its own endpoints');
  }
  if (!createEndpoints && routeTableIds.length > 0) throw new SettingsError('routeTableIds applies only with vpcEndpoints=true');
  return { vpcId, subnetIds, securityGroupIds, createEndpoints, routeTableIds };
}

/** Context keys set but not understood (typos), ignoring CDK's own `aws:`/`@aws-cdk` keys. */
export function unknownContextKeys(keys: string[]): string[] {
  const known = new Set<string>(CONTEXT_KEYS);
  return keys.filter((key) => !known.has(key) && !key.startsWith('aws:') && !key.startsWith('@aws-cdk') && !key.startsWith('cdk'));
}
