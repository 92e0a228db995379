// The tenant directory: DynamoDB table `tenant_id` (string) → `name` (string), read by the
// enrich function. An existing table can be used instead (by name).

import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { REASONS, skipCheckov } from '../suppressions';

export interface TenantDirectoryProps {
  /** Use this existing table instead of creating one. */
  readonly existingTableName?: string;
  readonly removalPolicy: RemovalPolicy;
  readonly deletionProtection: boolean;
}

export class TenantDirectory extends Construct {
  public readonly table: dynamodb.ITable;

  constructor(scope: Construct, id: string, props: TenantDirectoryProps) {
    super(scope, id);
    if (props.existingTableName) {
      this.table = dynamodb.TableV2.fromTableName(this, 'Table', props.existingTableName);
      return;
    }
    const table = new dynamodb.TableV2(this, 'Table', {
      partitionKey: { name: 'tenant_id', type: dynamodb.AttributeType.STRING },
      billing: dynamodb.Billing.onDemand(),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: props.deletionProtection,
      removalPolicy: props.removalPolicy,
    });
    skipCheckov(table, { id: 'CKV_AWS_119', reason: REASONS.awsManagedEncryption });
    this.table = table;
  }

  /** Exactly what the enrich function calls: BatchGetItem and GetItem on the table. */
  public grantLookup(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['dynamodb:BatchGetItem', 'dynamodb:GetItem'],
      resourceArns: [this.table.tableArn],
    });
  }
}
