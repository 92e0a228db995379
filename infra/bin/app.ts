#!/usr/bin/env node
// metrics-lake CDK app. Settings come from context; see README.md.
//   npx cdk deploy -c stage=prod -c alarmEmail=ops@example.com

import { App, Annotations } from 'aws-cdk-lib';
import { readSettings, unknownContextKeys, CONTEXT_KEYS } from '../lib/config';
import { MetricsLakeStack } from '../lib/metrics-lake-stack';

const app = new App();
const settings = readSettings((key) => app.node.tryGetContext(key));

const stack = new MetricsLakeStack(app, `metrics-lake-${settings.stage}`, {
  settings,
  description: `metrics-lake (${settings.stage}): EventBridge rules, Firehose, S3, Rust Lambdas, per-tenant store and query API`,
  // Account and region come from the CLI's credentials/profile at deploy time.
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});

// Catch typos in -c keys: every key this app reads is in CONTEXT_KEYS.
const given = Object.keys(app.node.getAllContext());
for (const key of unknownContextKeys(given)) {
  Annotations.of(stack).addWarningV2('metrics-lake:unknown-context', `context key ${key} is not used (known keys: ${CONTEXT_KEYS.join(', ')})`);
}
