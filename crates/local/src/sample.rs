//! The sample data set: a month of EventBridge events from a SaaS security product, for the
//! metrics in `infra/metrics.toml`. Deterministic (a seeded generator, so every run and every
//! machine gets the same events), streamed in arrival order (memory does not grow with the
//! number of events), with a daily and weekly rhythm, tenants of different sizes, and a small
//! share of the faults real producers send: unknown tenants, missing fields, bad times,
//! redelivered duplicates, late events, and events no rule matches.

use metrics_schema::EventTime;
use metrics_schema::time::Civil;
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::digits::{push_civil, push_hex};

/// Tenants of the sample, with their share of the traffic. The last one is not in the tenant
/// directory (`events/sample/tenants.json`): its events fail enrichment as `unknown_tenant`.
pub const TENANTS: [(&str, &str, u32); 6] = [
    ("acme-prod", "Acme Corp", 400),
    ("globex", "Globex Corporation", 250),
    ("initech", "Initech", 150),
    ("umbrella-eu", "Umbrella EU", 120),
    ("hooli-staging", "Hooli (staging)", 75),
    ("wayne-ent", "Wayne Enterprises", 5),
];

/// The sample's defaults: 100,000 events over the 30 days before 2026-11-26.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleConfig {
    pub events: u64,
    pub seed: u64,
    /// Start of the window, epoch milliseconds (UTC midnight).
    pub start_ms: i64,
    pub days: u32,
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig {
            events: 100_000,
            seed: 20_261_126,
            start_ms: 1_793_059_200_000,
            days: 30,
        }
    }
}

/// One EventBridge event and when it reached the bus (epoch milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleEvent {
    pub arrival_ms: i64,
    /// The event as compact JSON, members in name order (what `metrics-lake sample` prints).
    pub json: String,
}

/// Relative traffic per hour of the day (UTC): a working day with a lunch dip.
const HOURLY: [u32; 24] = [
    2, 1, 1, 1, 1, 2, 4, 8, 14, 18, 20, 19, 15, 18, 20, 19, 16, 12, 8, 6, 5, 4, 3, 2,
];
/// Relative traffic per weekday, Monday first.
const DAILY: [u32; 7] = [10, 11, 11, 10, 9, 3, 2];

/// A small, well-known deterministic generator (SplitMix64). Sample data needs the same
/// sequence forever on every platform, which general-purpose RNG crates do not promise across
/// versions.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True with probability `per_mille` / 1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn weighted<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut x = self.below(total);
        for (item, w) in items {
            if x < u64::from(*w) {
                return item;
            }
            x -= u64::from(*w);
        }
        &items[items.len() - 1].0
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (u128::from(self.next()), u128::from(self.next()));
        let mut id = String::with_capacity(36);
        push_hex(&mut id, a >> 32, 8);
        id.push('-');
        push_hex(&mut id, a >> 16, 4);
        id.push_str("-4");
        push_hex(&mut id, a, 3);
        id.push('-');
        push_hex(&mut id, ((b >> 48) & 0x3fff) | 0x8000, 4);
        id.push('-');
        push_hex(&mut id, b, 12);
        id
    }

    /// `prefix` and the first `len` of the 16 hex digits of the next number.
    fn id(&mut self, prefix: &str, len: usize) -> String {
        let len = len.min(16);
        let mut id = String::with_capacity(prefix.len() + len);
        id.push_str(prefix);
        push_hex(&mut id, u128::from(self.next() >> (4 * (16 - len))), len);
        id
    }
}

/// The events, in arrival order.
#[derive(Debug, Clone)]
pub struct SampleEvents {
    config: SampleConfig,
    rng: SplitMix64,
    minute: i64,
    minutes: i64,
    /// Expected events per unit of weight, and the fractional carry between minutes, so the
    /// total matches `events` without randomness in the count.
    per_weight: f64,
    carry: f64,
    emitted: u64,
    pending: Vec<SampleEvent>,
}

impl SampleEvents {
    pub fn new(config: SampleConfig) -> Self {
        let minutes = i64::from(config.days) * 24 * 60;
        let total_weight: f64 = (0..minutes).map(|m| weight(config.start_ms, m)).sum();
        SampleEvents {
            rng: SplitMix64(config.seed),
            minute: 0,
            minutes,
            per_weight: config.events as f64 / total_weight,
            carry: 0.0,
            emitted: 0,
            pending: Vec::new(),
            config,
        }
    }

    fn fill_minute(&mut self) {
        let expected = weight(self.config.start_ms, self.minute) * self.per_weight + self.carry;
        let mut count = expected.floor() as u64;
        self.carry = expected - count as f64;
        let last_minute = self.minute + 1 == self.minutes;
        if last_minute {
            count = self.config.events.saturating_sub(self.emitted);
        }
        count = count.min(self.config.events.saturating_sub(self.emitted));
        let minute_ms = self.config.start_ms + self.minute * 60_000;
        let mut batch: Vec<SampleEvent> = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let arrival_ms = minute_ms + self.rng.below(60_000) as i64;
            batch.push(SampleEvent {
                arrival_ms,
                json: String::new(),
            });
        }
        batch.sort_by_key(|e| e.arrival_ms);
        for slot in &mut batch {
            slot.json = domain_event(&mut self.rng, slot.arrival_ms);
        }
        self.emitted += count;
        // Redeliveries: EventBridge and producers retry, so the same event (same id) shows up
        // again a little later. They count as input events of their own.
        let mut with_duplicates = Vec::with_capacity(batch.len() + 2);
        for e in batch {
            let duplicate = self.rng.chance(10).then(|| e.clone());
            with_duplicates.push(e);
            with_duplicates.extend(duplicate);
        }
        with_duplicates.reverse();
        self.pending = with_duplicates;
        self.minute += 1;
    }
}

impl Iterator for SampleEvents {
    type Item = SampleEvent;

    fn next(&mut self) -> Option<SampleEvent> {
        loop {
            if let Some(e) = self.pending.pop() {
                return Some(e);
            }
            if self.minute >= self.minutes || self.emitted >= self.config.events {
                return None;
            }
            self.fill_minute();
        }
    }
}

/// Traffic weight of one minute of the window.
fn weight(start_ms: i64, minute: i64) -> f64 {
    let t = start_ms / 60_000 + minute;
    let hour = (t / 60).rem_euclid(24) as usize;
    // 1970-01-01 was a Thursday (index 3 with Monday = 0).
    let weekday = ((t / 1440) + 3).rem_euclid(7) as usize;
    f64::from(HOURLY[hour] * DAILY[weekday])
}

const REPOS: [&str; 8] = [
    "payments-api",
    "web-frontend",
    "auth-service",
    "infra-live",
    "mobile-app",
    "data-pipeline",
    "billing",
    "docs",
];
const SEVERITIES: [(&str, u32); 4] = [("critical", 5), ("high", 20), ("medium", 45), ("low", 30)];
const CONTROLS: [&str; 5] = ["sast", "sca", "secrets", "iac", "container"];

/// RFC 3339 in UTC, second precision, as services usually publish it.
fn rfc3339(ms: i64) -> String {
    let c = EventTime::from_millis(ms).civil().unwrap_or(Civil::EPOCH);
    let mut time = String::with_capacity(20);
    push_civil(&mut time, &c, ['-', 'T', ':']);
    time.push('Z');
    time
}

/// A JSON value of the sample, built in the order its parts are drawn from the generator and
/// written as serde_json writes a `Value` (whose maps keep their members sorted by name), so
/// the data set stays byte for byte what it was; a `Value` allocated a map node and a name per
/// member, which made generating the input a large part of a run.
#[derive(Debug)]
enum Json {
    Str(&'static str),
    Text(String),
    Int(u64),
    Float(f64),
    Bool(bool),
    EmptyArray,
    /// Members sorted by name ([`Json::object`]).
    Object(Vec<(&'static str, Json)>),
}

impl Json {
    fn object(mut members: Vec<(&'static str, Json)>) -> Json {
        members.sort_unstable_by_key(|(name, _)| *name);
        Json::Object(members)
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Str(s) => serializer.serialize_str(s),
            Json::Text(s) => serializer.serialize_str(s),
            Json::Int(n) => serializer.serialize_u64(*n),
            Json::Float(f) => serializer.serialize_f64(*f),
            Json::Bool(b) => serializer.serialize_bool(*b),
            Json::EmptyArray => serializer.collect_seq(std::iter::empty::<Json>()),
            Json::Object(members) => {
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (name, value) in members {
                    map.serialize_entry(name, value)?;
                }
                map.end()
            }
        }
    }
}

/// One domain event as a service publishes it, arriving at `arrival_ms`, as compact JSON.
// `*rng.pick(…)`: without the deref the picks cannot infer their item type (`&'static str`).
#[allow(clippy::explicit_auto_deref)]
fn domain_event(rng: &mut SplitMix64, arrival_ms: i64) -> String {
    let tenant = *rng.weighted(&TENANTS.map(|(id, _, w)| (id, w)));
    // Most events are published within seconds; a few hours late (a backlog, a retry queue).
    let delay_ms = if rng.chance(5) {
        3_600_000 + rng.below(44 * 3_600_000) as i64
    } else {
        rng.below(5_000) as i64
    };
    let occurred = rfc3339(arrival_ms - delay_ms);
    let repo = *rng.pick(&REPOS);
    let kind = *rng.weighted(&[
        ("findings", 20),
        ("scan", 30),
        ("fixed", 12),
        ("pr", 20),
        ("policy", 8),
        ("sca", 7),
        ("secret", 3),
        ("signin", 3),
    ]);
    // Each member's value is drawn in the order written: that order is the data set.
    let (source, detail_type, time_field, mut detail) = match kind {
        "findings" => (
            "findings",
            "findings-uploaded",
            "created_at",
            vec![
                ("upload_id", Json::Text(rng.id("upl_", 10))),
                (
                    "scanner",
                    Json::Str(*rng.pick(&["semgrep", "trivy", "gitleaks", "checkov", "kics"])),
                ),
                ("repo_name", Json::Str(repo)),
                ("new_findings_count", Json::Int(rng.below(12))),
                ("existing_findings_count", Json::Int(10 + rng.below(90))),
            ],
        ),
        "scan" => (
            "scanner",
            "scan-completed",
            "finished_at",
            vec![
                ("scan_id", Json::Text(rng.id("scn_", 6))),
                ("repo_name", Json::Str(repo)),
                (
                    "branch",
                    Json::Str(*rng.pick(&["main", "release/2026.11", "feat/\"quoted\"-name"])),
                ),
                ("is_default_branch", Json::Bool(rng.chance(700))),
                ("scan_type", Json::Str(*rng.pick(&CONTROLS))),
                (
                    "status",
                    Json::Str(*rng.weighted(&[("succeeded", 90), ("failed", 7), ("timed_out", 3)])),
                ),
                ("duration_ms", Json::Int(5_000 + rng.below(240_000))),
                ("findings_count", Json::Int(rng.below(40))),
            ],
        ),
        "fixed" => (
            "findings",
            "finding-fixed",
            "fixed_at",
            vec![
                ("finding_id", Json::Text(rng.id("fnd_", 8))),
                ("title", Json::Str("SQL injection in \"orders\" query")),
                ("severity", Json::Str(*rng.weighted(&SEVERITIES))),
                ("control", Json::Str(*rng.pick(&CONTROLS))),
                ("repo_name", Json::Str(repo)),
                (
                    "fix_method",
                    Json::Str(*rng.weighted(&[("auto_pr", 45), ("manual", 50), ("ignored_upstream", 5)])),
                ),
                (
                    "time_to_fix_hours",
                    Json::Float((rng.below(2_000) as f64) / 10.0 + 0.5),
                ),
            ],
        ),
        "pr" => (
            "pull-requests",
            "pr-check-completed",
            "completed_at",
            vec![
                ("check_id", Json::Text(rng.id("chk_", 6))),
                ("repo_name", Json::Str(repo)),
                ("pr_number", Json::Int(1 + rng.below(3_000))),
                ("pr_title", Json::Str("Bump lodash to 4.17.21")),
                (
                    "author",
                    Json::object(vec![("login", Json::Str("dana")), ("type", Json::Str("User"))]),
                ),
                (
                    "conclusion",
                    Json::Str(*rng.weighted(&[
                        ("success", 70),
                        ("failure", 15),
                        ("neutral", 5),
                        ("cancelled", 6),
                        ("skipped", 4),
                    ])),
                ),
                ("blocking", Json::Bool(rng.chance(120))),
                ("new_findings_count", Json::Int(rng.below(5))),
                ("duration_ms", Json::Int(10_000 + rng.below(110_000))),
            ],
        ),
        "policy" => (
            "policies",
            "policy-violation-detected",
            "detected_at",
            vec![
                ("violation_id", Json::Text(rng.id("vio_", 6))),
                (
                    "policy_id",
                    Json::Str(*rng.pick(&[
                        "s3-bucket-public-read",
                        "sg-open-ssh",
                        "iam-wildcard-admin",
                        "rds-unencrypted",
                        "gcs-uniform-access-off",
                    ])),
                ),
                (
                    "severity",
                    Json::Str(*rng.weighted(&[
                        ("critical", 5),
                        ("high", 20),
                        ("medium", 35),
                        ("low", 25),
                        ("info", 15),
                    ])),
                ),
                ("message", Json::Str("Bucket \"acme-logs\" allows public read")),
                ("risk_score", Json::Float((rng.below(101) as f64) / 10.0)),
                (
                    "resource",
                    Json::object(vec![
                        (
                            "type",
                            Json::Str(*rng.pick(&[
                                "aws_s3_bucket",
                                "aws_security_group",
                                "google_storage_bucket",
                                "azurerm_storage_account",
                            ])),
                        ),
                        (
                            "cloud",
                            Json::Str(*rng.weighted(&[("aws", 70), ("gcp", 20), ("azure", 10)])),
                        ),
                        ("region", Json::Str("eu-west-1")),
                    ]),
                ),
            ],
        ),
        "sca" => (
            "sca",
            "vulnerable-dependency-found",
            "found_at",
            vec![
                ("repo_name", Json::Str(repo)),
                (
                    "ecosystem",
                    Json::Str(*rng.pick(&["npm", "pypi", "maven", "go", "cargo"])),
                ),
                (
                    "package_name",
                    Json::Str(*rng.pick(&[
                        "lodash",
                        "requests",
                        "log4j-core",
                        "golang.org/x/net",
                        "openssl",
                    ])),
                ),
                (
                    "cve_id",
                    Json::Text(format!("CVE-2026-{}", 10_000 + rng.below(40_000))),
                ),
                ("severity", Json::Str(*rng.weighted(&SEVERITIES))),
                ("cvss_score", Json::Float((rng.below(101) as f64) / 10.0)),
                ("fix_available", Json::Bool(rng.chance(800))),
                ("reachable", Json::Bool(rng.chance(250))),
            ],
        ),
        "secret" => (
            "secrets",
            "secret-detected",
            "detected_at",
            vec![
                ("detection_id", Json::Text(rng.id("sec_", 4))),
                ("repo_name", Json::Str(repo)),
                (
                    "secret_type",
                    Json::Str(*rng.pick(&["aws-access-key", "github-token", "slack-webhook", "private-key"])),
                ),
                ("verified", Json::Bool(rng.chance(300))),
                ("in_history", Json::Bool(rng.chance(600))),
            ],
        ),
        // No rule maps sign-ins: counted as unmatched, never an error.
        _ => (
            "auth",
            "user-signed-in",
            "signed_in_at",
            vec![
                ("user_id", Json::Text(rng.id("usr_", 8))),
                ("method", Json::Str("sso")),
            ],
        ),
    };
    detail.push(("tenant_id", Json::Str(tenant)));
    // Producers' mistakes: a missing measure or time, and a time that is not a time.
    let fault = rng.below(1000);
    if fault < 3 {
        detail.push((time_field, Json::Str("2026-13-45T99:00:00Z")));
    } else if fault >= 7 {
        detail.push((time_field, Json::Text(occurred)));
    }
    let event = Json::object(vec![
        ("version", Json::Str("0")),
        ("id", Json::Text(rng.uuid())),
        ("detail-type", Json::Str(detail_type)),
        ("source", Json::Str(source)),
        ("account", Json::Str("123456789012")),
        ("time", Json::Text(rfc3339(arrival_ms))),
        ("region", Json::Str("us-east-1")),
        ("resources", Json::EmptyArray),
        ("detail", Json::object(detail)),
    ]);
    // Plain strings and numbers always serialise.
    serde_json::to_string(&event).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requested_number_of_events_arrives_in_order() {
        let config = SampleConfig {
            events: 5_000,
            ..SampleConfig::default()
        };
        let events: Vec<SampleEvent> = SampleEvents::new(config).collect();
        let duplicates = events.len() - 5_000;
        assert!(
            duplicates > 0 && duplicates < 150,
            "about 1% redeliveries, got {duplicates}"
        );
        assert!(events.windows(2).all(|w| w[0].arrival_ms <= w[1].arrival_ms));
        let end = config.start_ms + 30 * 86_400_000;
        assert!(
            events
                .iter()
                .all(|e| (config.start_ms..end).contains(&e.arrival_ms))
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_events() {
        let config = SampleConfig {
            events: 300,
            ..SampleConfig::default()
        };
        let a: Vec<SampleEvent> = SampleEvents::new(config).collect();
        let b: Vec<SampleEvent> = SampleEvents::new(config).collect();
        assert_eq!(a, b);
        let other: Vec<SampleEvent> = SampleEvents::new(SampleConfig { seed: 1, ..config }).collect();
        assert_ne!(a, other);
    }

    #[test]
    fn weekdays_are_busier_than_weekends_and_afternoons_than_nights() {
        let config = SampleConfig {
            events: 20_000,
            ..SampleConfig::default()
        };
        let (mut weekday, mut weekend, mut day, mut night) = (0u32, 0u32, 0u32, 0u32);
        for e in SampleEvents::new(config) {
            let minutes = e.arrival_ms / 60_000;
            let dow = ((minutes / 1440) + 3).rem_euclid(7);
            let hour = (minutes / 60).rem_euclid(24);
            if dow >= 5 {
                weekend += 1
            } else {
                weekday += 1
            }
            if (13..17).contains(&hour) {
                day += 1
            } else if (1..5).contains(&hour) {
                night += 1
            }
        }
        assert!(weekday > 4 * weekend, "{weekday} vs {weekend}");
        assert!(day > 10 * night, "{day} vs {night}");
    }
}

#[cfg(test)]
mod committed_slice {
    use super::*;

    /// `events/sample/first-500.ndjson` is what the generator produces: if this fails, the
    /// data set changed for everyone; regenerate the file only on purpose
    /// (`metrics-lake sample --events 500 > events/sample/first-500.ndjson`).
    #[test]
    fn the_committed_slice_is_what_the_generator_produces() {
        let committed = include_str!("../../../events/sample/first-500.ndjson");
        let mut generated = String::new();
        for e in SampleEvents::new(SampleConfig {
            events: 500,
            ..SampleConfig::default()
        }) {
            generated.push_str(&e.json);
            generated.push('\n');
        }
        assert!(
            committed == generated,
            "events/sample/first-500.ndjson no longer matches the generator"
        );
    }
}
