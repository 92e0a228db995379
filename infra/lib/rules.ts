// Loads and validates `generated/rules.json`, the rendered form of `metrics.toml`
// (`metrics-lake mappings render --out infra/generated/rules.json`). The stack never reads the
// mapping file itself: what is deployed is exactly what was rendered and reviewed.

import * as fs from 'node:fs';
import * as path from 'node:path';

/** One EventBridge rule for one metric, as rendered. */
export interface RenderedRule {
  /** Metric name (`[A-Za-z0-9_.-]`), also the rule's construct id. */
  readonly metricName: string;
  readonly description?: string;
  /** The bus the domain events are published on (`default` or a custom bus name). */
  readonly eventBusName: string;
  /** The EventBridge event pattern, deployed verbatim. */
  readonly eventPattern: Record<string, unknown>;
  /**
   * The target's input transformer, deployed verbatim. The rendered rules wrap the whole event,
   * `{"metric":"<name>","event":<aws.events.event.json>}`, and need no paths (metrics-enrich maps
   * the event); a hand-written rules file may still use `inputPathsMap`.
   */
  readonly inputTransformer: {
    readonly inputPathsMap?: Record<string, string>;
    readonly inputTemplate: string;
  };
}

/** Where the rendered rules live, relative to the CDK app (`infra/`). */
export const DEFAULT_RULES_FILE = path.join(__dirname, '..', 'generated', 'rules.json');

// Limits EventBridge enforces at deploy time; failing here gives a clearer message than a
// failed CloudFormation update.
const MAX_INPUT_PATHS = 100;
const MAX_INPUT_TEMPLATE_CHARS = 8192;
const MAX_EVENT_PATTERN_CHARS = 4096;
const MAX_RULE_DESCRIPTION_CHARS = 512;
// The schema crate's metric-name rule: 1-256 bytes of [A-Za-z0-9_.-].
const METRIC_NAME = /^[A-Za-z0-9_.-]{1,256}$/;
const BUS_NAME = /^[A-Za-z0-9._-]{1,256}$/;
const INPUT_PATH_KEY = /^[A-Za-z0-9_-]+$/;

export class RulesFileError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'RulesFileError';
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses and validates the rendered rules document (already JSON-decoded). */
export function parseRules(document: unknown, file = 'rules.json'): RenderedRule[] {
  const fail = (message: string): never => {
    throw new RulesFileError(file, message);
  };
  if (!isObject(document) || !Array.isArray(document.rules)) {
    fail('expected an object with a `rules` array');
  }
  const rules = (document as { rules: unknown[] }).rules;
  if (rules.length === 0) fail('no rules: render at least one metric');

  const seen = new Set<string>();
  return rules.map((raw, index) => {
    const where = `rules[${index}]`;
    if (!isObject(raw)) return fail(`${where} is not an object`);
    const { metricName, description, eventBusName, eventPattern, inputTransformer } = raw;

    if (typeof metricName !== 'string' || !METRIC_NAME.test(metricName)) {
      fail(`${where}.metricName must match ${METRIC_NAME}, got ${JSON.stringify(metricName)}`);
    }
    const name = metricName as string;
    if (seen.has(name)) fail(`${where}: metric ${name} appears twice`);
    seen.add(name);

    if (description !== undefined && (typeof description !== 'string' || description.length > MAX_RULE_DESCRIPTION_CHARS)) {
      fail(`${where}.description must be a string of at most ${MAX_RULE_DESCRIPTION_CHARS} characters`);
    }
    if (typeof eventBusName !== 'string' || !BUS_NAME.test(eventBusName)) {
      fail(`${where}.eventBusName must be an event bus name, got ${JSON.stringify(eventBusName)}`);
    }
    if (!isObject(eventPattern) || Object.keys(eventPattern).length === 0) {
      fail(`${where}.eventPattern must be a non-empty object`);
    }
    if (JSON.stringify(eventPattern).length > MAX_EVENT_PATTERN_CHARS) {
      fail(`${where}.eventPattern is longer than ${MAX_EVENT_PATTERN_CHARS} characters`);
    }
    if (!isObject(inputTransformer)) return fail(`${where}.inputTransformer must be an object`);
    const { inputPathsMap = {}, inputTemplate } = inputTransformer;
    if (!isObject(inputPathsMap)) return fail(`${where}.inputTransformer.inputPathsMap must be an object`);
    const keys = Object.keys(inputPathsMap);
    if (keys.length > MAX_INPUT_PATHS) fail(`${where}: more than ${MAX_INPUT_PATHS} input paths`);
    for (const key of keys) {
      const value = inputPathsMap[key];
      if (!INPUT_PATH_KEY.test(key) || key.startsWith('AWS.')) fail(`${where}: invalid input path name ${JSON.stringify(key)}`);
      if (typeof value !== 'string' || !value.startsWith('$')) fail(`${where}: input path ${key} must be a JSON path string`);
    }
    if (typeof inputTemplate !== 'string' || inputTemplate.length === 0 || inputTemplate.length > MAX_INPUT_TEMPLATE_CHARS) {
      fail(`${where}.inputTransformer.inputTemplate must be a string of 1-${MAX_INPUT_TEMPLATE_CHARS} characters`);
    }
    // Every placeholder must name a path (reserved `aws.events.*` variables aside).
    for (const match of (inputTemplate as string).matchAll(/<([A-Za-z0-9_.-]+)>/g)) {
      const variable = match[1];
      if (!variable.startsWith('aws.events.') && !(variable in inputPathsMap)) {
        fail(`${where}: the input template uses <${variable}>, which inputPathsMap does not define`);
      }
    }

    return {
      metricName: name,
      description: description as string | undefined,
      eventBusName: eventBusName as string,
      eventPattern: eventPattern as Record<string, unknown>,
      inputTransformer: {
        ...(keys.length > 0 ? { inputPathsMap: inputPathsMap as Record<string, string> } : {}),
        inputTemplate: inputTemplate as string,
      },
    };
  });
}

/** Reads and validates a rendered rules file. */
export function loadRules(file: string = DEFAULT_RULES_FILE): RenderedRule[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new RulesFileError(file, `cannot read it (${(error as Error).message}); render it with \`metrics-lake mappings render --out infra/generated/rules.json\``);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new RulesFileError(file, `not JSON: ${(error as Error).message}`);
  }
  return parseRules(document, file);
}
