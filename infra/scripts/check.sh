#!/usr/bin/env bash
# Synthesizes the stack offline in several configurations and checks every template with
# cfn-lint (+ serverless rules) and checkov. Any finding fails. No AWS account or network.
set -euo pipefail
cd "$(dirname "$0")/.."
export CDK_DISABLE_CLI_TELEMETRY=true AWS_EC2_METADATA_DISABLED=true
scripts/check-template.sh --preflight
synth() {
  local name=$1; shift
  echo "==> cdk synth ($name): $*"
  rm -rf "cdk.out/check/$name"
  npx cdk synth --quiet --no-notices --no-version-reporting --context skipBundling=true \
    --output "cdk.out/check/$name" "$@" >/dev/null
}
# Placeholder values only: nothing is deployed. The store has no default.
synth dev --context store=timestream
synth prod --context store=timestream --context stage=prod --context alarmEmail=alarms@example.com --context createEventBus=true \
  --context enrichReservedConcurrency=10 --context writerReservedConcurrency=10 \
  --context forwarderReservedConcurrency=5 --context queryReservedConcurrency=10
# Sixty metrics on a custom bus: the rules DLQ policy, alarm groups and dashboard at scale.
synth prod-60-metrics --context store=timestream --context stage=prod --context alarmEmail=alarms@example.com \
  --context eventBusName=domain-events --context rulesFile=test/fixtures/rules-60.json
influx=(--context store=influxdb
  --context influxdbUrl=https://example-id.timestream-influxdb.us-east-1.on.aws:8181
  --context influxdbTokenSecretArn=arn:aws:secretsmanager:us-east-1:111111111111:secret:metrics-lake/influxdb-write-AbCdEf
  --context influxdbReadTokenSecretArn=arn:aws:secretsmanager:us-east-1:111111111111:secret:metrics-lake/influxdb-read-GhIjKl
  --context vpcId=vpc-0123456789abcdef0 --context subnetIds=subnet-0aaaaaaaaaaaaaaa1,subnet-0bbbbbbbbbbbbbbb2
  --context securityGroupIds=sg-0ccccccccccccccc3)
synth influxdb "${influx[@]}" \
  --context routeTableIds=rtb-0ddddddddddddddd4 \
  --context jwtIssuer=https://login.example.com/ --context jwtAudience=metrics-lake \
  --context alarmTopicArn=arn:aws:sns:us-east-1:111111111111:alarms --context eventBusName=domain-events
# The VPC has its own S3 gateway endpoint (or a NAT gateway); only the Secrets Manager one is created.
synth influxdb-own-s3-endpoint "${influx[@]}" --context s3Endpoint=false --context stage=prod --context alarmEmail=alarms@example.com
synth influxdb-no-endpoints "${influx[@]}" --context vpcEndpoints=false
# The InfluxDB 3 cluster, security groups and token secrets a new account creates first.
synth influxdb-cluster --app "npx tsx bin/influxdb.ts" --context vpcId=vpc-0123456789abcdef0 \
  --context subnetIds=subnet-0aaaaaaaaaaaaaaa1,subnet-0bbbbbbbbbbbbbbb2
synth influxdb-cluster-prod --app "npx tsx bin/influxdb.ts" --context stage=prod --context vpcId=vpc-0123456789abcdef0 \
  --context subnetIds=subnet-0aaaaaaaaaaaaaaa1 --context influxdbParameterGroup=InfluxDBV3Enterprise1Node
for dir in cdk.out/check/*/; do
  echo "==> checks: $dir"
  scripts/check-template.sh "$dir"
done
