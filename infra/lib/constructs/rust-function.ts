// One Rust Lambda function of the workspace: provided.al2023 on arm64, its own role and log
// group (with retention, no log-retention custom resource), code from cargo-lambda.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { RustFunction as CargoLambdaFunction } from 'cargo-lambda-cdk';
import { Construct } from 'constructs';
import type { LambdaCodeSource } from '../config';
import { REASONS, skipCfnLint, skipCheckov } from '../suppressions';
import { newLogGroup } from './log-group';

export interface RustFunctionProps {
  /** Binary name in the workspace (`metrics-enrich`, …); also `target/lambda/<binary>/`. */
  readonly binary: string;
  readonly description: string;
  readonly memorySize: number;
  readonly timeout: Duration;
  readonly environment: Record<string, string>;
  readonly reservedConcurrency?: number;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  readonly codeSource: LambdaCodeSource;
  /** Cargo workspace root. */
  readonly workspaceRoot: string;
  /**
   * For a function invoked asynchronously (a schedule), why it has no Lambda dead-letter
   * queue; the others are invoked synchronously or by a poller.
   */
  readonly asyncInvocation?: string;
}

export class RustFunction extends Construct {
  public readonly function: lambda.Function;
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: RustFunctionProps) {
    super(scope, id);

    this.logGroup = newLogGroup(this, 'Logs', props.logRetention, props.removalPolicy);

    const common: lambda.FunctionOptions = {
      description: props.description,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize,
      timeout: props.timeout,
      environment: props.environment,
      reservedConcurrentExecutions: props.reservedConcurrency,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      tracing: lambda.Tracing.ACTIVE,
    };

    if (props.codeSource === 'prebuilt') {
      const dir = path.join(props.workspaceRoot, 'target', 'lambda', props.binary);
      if (!fs.existsSync(path.join(dir, 'bootstrap'))) {
        throw new Error(`${dir}/bootstrap is missing: run \`cargo lambda build --release --arm64\` at the workspace root first (or use -c lambdaCode=cargo-lambda)`);
      }
      this.function = new lambda.Function(this, 'Function', {
        ...common,
        runtime: lambda.Runtime.PROVIDED_AL2023,
        handler: 'bootstrap',
        code: lambda.Code.fromAsset(dir),
      });
    } else {
      this.function = new CargoLambdaFunction(this, 'Function', {
        ...common,
        runtime: 'provided.al2023',
        manifestPath: path.join(props.workspaceRoot, 'Cargo.toml'),
        binaryName: props.binary,
        bundling: { architecture: lambda.Architecture.ARM_64 },
      });
    }

    skipCheckov(
      this.function,
      { id: 'CKV_AWS_116', reason: props.asyncInvocation ?? REASONS.syncOrPolledInvoke },
      { id: 'CKV_AWS_117', reason: REASONS.noVpc },
      { id: 'CKV_AWS_173', reason: REASONS.envNotSecret },
    );
    skipCfnLint(this.function, {
      id: 'WS1004',
      reason: 'The rule looks for a log group named /aws/lambda/<name>; this function logs to its own log group (LoggingConfig.LogGroup), which has a retention.',
    });
    skipCfnLint(this.function, {
      id: 'W3005',
      reason: "aws-lambda's Function adds DependsOn on its role, which the Role GetAtt already implies; harmless and not removable from outside the construct.",
    });
    if (props.reservedConcurrency === undefined) {
      skipCheckov(this.function, { id: 'CKV_AWS_115', reason: REASONS.reservedConcurrencyOptional });
    }
  }
}
