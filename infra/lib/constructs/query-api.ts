// The tenant query API: an HTTP API whose every route requires a valid JWT, in front of the
// query function; and IAM as the second wall (reference §3.10): the function holds no
// Timestream read permission itself. For each request it assumes the tenant-query role with
// the session tag `tenant=<tenant id from the verified token>`, and that role may `Select`
// only the table named by its own session tag, `…:database/<db>/table/${aws:PrincipalTag/tenant}`.

import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { newLogGroup } from './log-group';
import type { MetricsStore } from './store';

/** The session tag the query function sets, and the policy variable that reads it. */
export const TENANT_SESSION_TAG = 'tenant';
export const TENANT_TABLE_VARIABLE = `\${aws:PrincipalTag/${TENANT_SESSION_TAG}}`;
/** Claim holding the tenant id in tokens of the Cognito user pool this stack creates. */
export const COGNITO_TENANT_CLAIM = 'custom:tenant_id';
export const DEFAULT_TENANT_CLAIM = 'tenant_id';
/** Stage throttling: steady requests per second and burst. */
export const API_RATE_LIMIT = 50;
export const API_BURST_LIMIT = 100;

export interface QueryApiProps {
  readonly queryFunction: lambda.Function;
  readonly store: MetricsStore;
  /** External OIDC issuer; without it a Cognito user pool is created. */
  readonly jwtIssuer?: string;
  readonly jwtAudience: string[];
  readonly tenantClaim?: string;
  /** Origins whose pages may call the API from a browser (the embeddable chart). */
  readonly corsOrigins?: string[];
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

export class QueryApi extends Construct {
  public readonly api: apigw.HttpApi;
  /** Assumed per request with a `tenant` session tag (store=timestream only). */
  public readonly tenantQueryRole?: iam.Role;
  public readonly userPool?: cognito.UserPool;
  public readonly userPoolClient?: cognito.UserPoolClient;
  public readonly tenantClaim: string;
  public readonly accessLogs: logs.LogGroup;

  constructor(scope: Construct, id: string, props: QueryApiProps) {
    super(scope, id);
    const fn = props.queryFunction;

    let issuer: string;
    let audience: string[];
    if (props.jwtIssuer) {
      issuer = props.jwtIssuer;
      audience = props.jwtAudience;
      this.tenantClaim = props.tenantClaim ?? DEFAULT_TENANT_CLAIM;
    } else {
      this.userPool = new cognito.UserPool(this, 'Users', {
        selfSignUpEnabled: false,
        signInAliases: { email: true },
        customAttributes: { tenant_id: new cognito.StringAttribute({ minLen: 3, maxLen: 256, mutable: false }) },
        passwordPolicy: { minLength: 12, requireDigits: true, requireLowercase: true, requireUppercase: true, requireSymbols: true },
        mfa: cognito.Mfa.OPTIONAL,
        mfaSecondFactor: { otp: true, sms: false },
        accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
        deletionProtection: props.removalPolicy !== RemovalPolicy.DESTROY,
        removalPolicy: props.removalPolicy,
      });
      // Users cannot set their own tenant: only administrators write `custom:tenant_id`.
      const readable = new cognito.ClientAttributes().withStandardAttributes({ email: true }).withCustomAttributes('tenant_id');
      const writable = new cognito.ClientAttributes().withStandardAttributes({ email: true });
      // Browsers sign in with SRP (Amplify's signIn); ADMIN_USER_PASSWORD_AUTH needs the
      // account's IAM credentials (cognito-idp:AdminInitiateAuth), so only operators and a
      // customer's backend can use it, e.g. for the deploy guide's first query. No hosted UI
      // and so no OAuth: CDK would otherwise enable the code and implicit grants with an
      // https://example.com callback.
      // https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-authentication-flow-methods.html
      this.userPoolClient = this.userPool.addClient('Client', {
        authFlows: { userSrp: true, adminUserPassword: true },
        disableOAuth: true,
        generateSecret: false,
        preventUserExistenceErrors: true,
        readAttributes: readable,
        writeAttributes: writable,
        idTokenValidity: Duration.hours(1),
        accessTokenValidity: Duration.hours(1),
      });
      const stack = Stack.of(this);
      issuer = `https://cognito-idp.${stack.region}.${stack.urlSuffix}/${this.userPool.userPoolId}`;
      audience = [this.userPoolClient.userPoolClientId];
      if (props.tenantClaim && props.tenantClaim !== COGNITO_TENANT_CLAIM) {
        throw new Error(`with the built-in user pool the tenant claim is ${COGNITO_TENANT_CLAIM}`);
      }
      this.tenantClaim = COGNITO_TENANT_CLAIM;
    }

    this.accessLogs = newLogGroup(this, 'AccessLogs', props.logRetention, props.removalPolicy);

    this.api = new apigw.HttpApi(this, 'Api', {
      description: 'metrics-lake tenant query API',
      // API Gateway answers preflights itself (OPTIONS never reaches the authorizer or the
      // function) and adds the CORS headers to answers; the token travels in Authorization.
      corsPreflight: props.corsOrigins?.length
        ? {
            allowOrigins: props.corsOrigins,
            allowMethods: [apigw.CorsHttpMethod.GET, apigw.CorsHttpMethod.POST, apigw.CorsHttpMethod.PUT, apigw.CorsHttpMethod.DELETE],
            allowHeaders: ['authorization', 'content-type', 'if-none-match'],
            exposeHeaders: ['etag', 'cache-control'],
            maxAge: Duration.hours(1),
          }
        : undefined,
      defaultAuthorizer: new HttpJwtAuthorizer('Jwt', issuer, {
        jwtAudience: audience,
        identitySource: ['$request.header.Authorization'],
      }),
    });
    this.api.addRoutes({
      path: '/{proxy+}',
      // PUT and DELETE: the alert routes (/v1/alerts/{id}).
      methods: [apigw.HttpMethod.GET, apigw.HttpMethod.POST, apigw.HttpMethod.PUT, apigw.HttpMethod.DELETE],
      integration: new HttpLambdaIntegration('Query', fn),
    });
    const stage = this.api.defaultStage!.node.defaultChild as apigw.CfnStage;
    stage.accessLogSettings = {
      destinationArn: this.accessLogs.logGroupArn,
      format: JSON.stringify({
        requestId: '$context.requestId',
        ip: '$context.identity.sourceIp',
        requestTime: '$context.requestTime',
        routeKey: '$context.routeKey',
        status: '$context.status',
        responseLength: '$context.responseLength',
        latency: '$context.responseLatency',
        integrationError: '$context.integrationErrorMessage',
        authorizerError: '$context.authorizer.error',
        subject: '$context.authorizer.claims.sub',
      }),
    };
    stage.defaultRouteSettings = { throttlingRateLimit: API_RATE_LIMIT, throttlingBurstLimit: API_BURST_LIMIT };

    fn.addEnvironment('TENANT_CLAIM', this.tenantClaim);

    if (props.store.kind === 'timestream') {
      // Trust: only the query function's role, only with exactly one session tag, `tenant`.
      this.tenantQueryRole = new iam.Role(this, 'TenantQueryRole', {
        description: "Assumed by the query function per request, tagged with the caller's tenant",
        assumedBy: new iam.PrincipalWithConditions(new iam.ArnPrincipal(fn.role!.roleArn), {
          StringLike: { [`aws:RequestTag/${TENANT_SESSION_TAG}`]: '?*' },
          'ForAllValues:StringEquals': { 'aws:TagKeys': [TENANT_SESSION_TAG] },
        }).withSessionTags(),
        maxSessionDuration: Duration.hours(1),
      });
      this.tenantQueryRole.addToPolicy(
        new iam.PolicyStatement({
          sid: 'SelectOwnTenantTableOnly',
          actions: ['timestream:Select', 'timestream:DescribeTable', 'timestream:ListMeasures'],
          resources: [props.store.tableArn(TENANT_TABLE_VARIABLE)],
        }),
      );
      this.tenantQueryRole.addToPolicy(
        new iam.PolicyStatement({
          sid: 'EndpointsAndResourcelessQueries',
          // Neither has a resource type; SelectValues covers only queries without a table.
          actions: ['timestream:DescribeEndpoints', 'timestream:SelectValues'],
          resources: ['*'],
        }),
      );
      iam.Grant.addToPrincipal({
        grantee: fn,
        actions: ['sts:AssumeRole', 'sts:TagSession'],
        resourceArns: [this.tenantQueryRole.roleArn],
      });
      fn.addEnvironment('TENANT_QUERY_ROLE_ARN', this.tenantQueryRole.roleArn);
      fn.addEnvironment('TENANT_SESSION_TAG', TENANT_SESSION_TAG);
    } else {
      props.store.grantQueryToken(fn); // its read token (no IAM on InfluxDB's data plane)
    }
  }

  /** Base URL of the API. */
  public get url(): string {
    return this.api.apiEndpoint;
  }
}
