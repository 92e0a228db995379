import { RemovalPolicy } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { REASONS, skipCheckov } from '../suppressions';

/** A log group with retention and a removal policy (CloudWatch Logs always encrypts at rest). */
export function newLogGroup(scope: Construct, id: string, retention: logs.RetentionDays, removalPolicy: RemovalPolicy): logs.LogGroup {
  const group = new logs.LogGroup(scope, id, { retention, removalPolicy });
  skipCheckov(group, { id: 'CKV_AWS_158', reason: REASONS.awsManagedEncryption });
  return group;
}
