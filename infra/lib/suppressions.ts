// Checkov and cfn-lint suppressions, written next to the resource they apply to, each with
// its reason. Checkov reads `Metadata.checkov.skip`; cfn-lint reads `Metadata.cfn-lint.config.ignore_checks`.

import { CfnResource } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

export interface Suppression {
  readonly id: string;
  readonly reason: string;
}

function cfnOf(construct: IConstruct): CfnResource {
  const resource = construct instanceof CfnResource ? construct : construct.node.defaultChild;
  if (!(resource instanceof CfnResource)) {
    throw new Error(`${construct.node.path} has no CloudFormation resource to annotate`);
  }
  return resource;
}

/** Adds checkov skips (`CKV_…`) with their reasons to the construct's resource. */
export function skipCheckov(construct: IConstruct, ...skips: Suppression[]): void {
  const resource = cfnOf(construct);
  const existing = (resource.getMetadata('checkov') as { skip?: { id: string; comment: string }[] } | undefined)?.skip ?? [];
  const merged = [...existing];
  for (const { id, reason } of skips) {
    if (!merged.some((s) => s.id === id)) merged.push({ id, comment: reason });
  }
  resource.addMetadata('checkov', { skip: merged });
}

/** Adds cfn-lint rule ids to ignore on the construct's resource (with the reasons kept beside them). */
export function skipCfnLint(construct: IConstruct, ...skips: Suppression[]): void {
  const resource = cfnOf(construct);
  const existing = (resource.getMetadata('cfn-lint') as { config?: { ignore_checks?: string[] } } | undefined)?.config?.ignore_checks ?? [];
  const reasons = (resource.getMetadata('cfn-lint-reasons') as Record<string, string> | undefined) ?? {};
  for (const { id, reason } of skips) {
    if (!existing.includes(id)) existing.push(id);
    reasons[id] = reason;
  }
  resource.addMetadata('cfn-lint', { config: { ignore_checks: existing } });
  resource.addMetadata('cfn-lint-reasons', reasons);
}

/** Shared reasons, so the same decision reads the same everywhere. */
export const REASONS = {
  awsManagedEncryption:
    'Encrypted at rest with the service-managed key. A customer-managed KMS key adds per-key and per-request charges and cross-service key policies; this stack does not hold data that requires one.',
  noVpc: 'The function calls only public AWS APIs (and Segment/Mixpanel over HTTPS); a VPC would add NAT cost without isolating anything.',
  syncOrPolledInvoke:
    'Not invoked asynchronously (Firehose, SQS event source or API Gateway call it synchronously), so a Lambda dead-letter queue would never receive anything; failures go to the SQS DLQs and the Firehose error prefix.',
  envNotSecret: 'The environment holds only names, ARNs and numbers; secrets are read from Secrets Manager at run time.',
  reservedConcurrencyOptional:
    'Reserved concurrency is a deployment option (context *ReservedConcurrency); new accounts have too little unreserved concurrency to reserve by default. SQS event sources cap concurrency with MaximumConcurrency instead.',
} as const;
