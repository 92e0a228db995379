#!/usr/bin/env node
// The InfluxDB 3 cluster, its security groups and token secrets, for store=influxdb in an
// account that has none yet (see README.md, "Deploying with InfluxDB"):
//   npx cdk deploy --app "npx tsx bin/influxdb.ts" -c vpcId=vpc-… -c subnetIds=subnet-…,subnet-…

import { App } from 'aws-cdk-lib';
import { InfluxDbStack, readInfluxDbStackSettings } from '../lib/influxdb-stack';

const app = new App();
const settings = readInfluxDbStackSettings((key) => app.node.tryGetContext(key));
new InfluxDbStack(app, `metrics-lake-influxdb-${settings.stage}`, {
  settings,
  description: `metrics-lake (${settings.stage}): Timestream for InfluxDB 3 cluster, its security groups and token secrets`,
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
