//! InputPathsMap JSON paths: the subset EventBridge documents (`$`, dot notation, array
//! indices), parsed once and resolved against the raw event text so extracted objects keep
//! their original bytes.

use std::cell::OnceCell;
use std::fmt;

use serde_json::value::RawValue;

use metrics_schema::json::RawObject;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A parsed `$.detail.items[0].id`-style path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPath {
    text: String,
    segments: Vec<Segment>,
}

/// Why a path is not accepted. Each message names the supported form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("a JSON path starts with `$` (e.g. `$.detail.tenant_id`)")]
    NoRoot,
    #[error(
        "wildcards (`*`) are not supported: the shape of their result is not documented, so it cannot be checked or emulated"
    )]
    Wildcard,
    #[error(
        "bracket notation is not supported; EventBridge asks for dot notation (`$.detail.field`), with brackets only for array indices (`$.resources[0]`)"
    )]
    Brackets,
    #[error("an empty key (`..` or a trailing `.`)")]
    EmptyKey,
    #[error("the character {0:?} is not allowed; keys are letters, digits, `_` and `-`")]
    BadCharacter(char),
    #[error(
        "{0:?} is not a reserved variable; they are aws.events.rule-name, aws.events.rule-arn, \
         aws.events.event.ingestion-time, aws.events.event and aws.events.event.json"
    )]
    UnknownVariable(String),
}

impl EventPath {
    pub fn parse(text: &str) -> Result<EventPath, PathError> {
        let rest = text.strip_prefix('$').ok_or(PathError::NoRoot)?;
        if text.contains('*') {
            return Err(PathError::Wildcard);
        }
        let mut segments = Vec::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '.' => {
                    let mut key = String::new();
                    while let Some(&k) = chars.peek() {
                        if k == '.' || k == '[' {
                            break;
                        }
                        if !(k.is_ascii_alphanumeric() || k == '_' || k == '-') {
                            return Err(PathError::BadCharacter(k));
                        }
                        key.push(k);
                        chars.next();
                    }
                    if key.is_empty() {
                        return Err(PathError::EmptyKey);
                    }
                    segments.push(Segment::Key(key));
                }
                '[' => {
                    let mut digits = String::new();
                    for d in chars.by_ref() {
                        if d == ']' {
                            break;
                        }
                        digits.push(d);
                    }
                    let index = digits.parse::<usize>().map_err(|_| PathError::Brackets)?;
                    segments.push(Segment::Index(index));
                }
                other => return Err(PathError::BadCharacter(other)),
            }
        }
        Ok(EventPath {
            text: text.to_owned(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The value at this path, or `None` when any step is absent or has the wrong shape
    /// (a key on a non-object, an index on a non-array or past its end).
    pub fn resolve<'a>(&self, root: &'a RawValue) -> Option<&'a RawValue> {
        self.resolve_from(root, &self.segments)
    }

    /// [`EventPath::resolve`] on an event whose top level is already read.
    pub(crate) fn resolve_in<'a>(&self, event: &EventView<'a>) -> Option<&'a RawValue> {
        match self.segments.split_first() {
            Some((Segment::Key(key), rest)) => self.resolve_from(event.get(key)?, rest),
            _ => self.resolve(event.raw()),
        }
    }

    fn resolve_from<'a>(&self, root: &'a RawValue, segments: &[Segment]) -> Option<&'a RawValue> {
        let mut current = root;
        for segment in segments {
            current = match segment {
                Segment::Key(key) => object_entry(current, key)?,
                Segment::Index(i) => array_items(current)?.get(*i).copied()?,
            };
        }
        Some(current)
    }
}

impl fmt::Display for EventPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One event's top-level members, read once: every rule looks up `source`, `detail-type`,
/// `detail`, `region`… in the same event, and reading the envelope again for each lookup was
/// most of the emulation's time.
#[derive(Debug)]
pub(crate) struct EventView<'a> {
    raw: &'a RawValue,
    top: RawObject<'a>,
    /// `detail`'s members, read the first time a pattern looks into it: a pattern filters on
    /// several of them, and reading the object again for each filter cost more than the rest
    /// of the match.
    detail: OnceCell<RawObject<'a>>,
}

impl<'a> EventView<'a> {
    /// `raw` is a JSON object (an empty view otherwise: every lookup finds nothing).
    pub(crate) fn new(raw: &'a RawValue) -> EventView<'a> {
        let top = read_object(raw);
        EventView {
            raw,
            top,
            detail: OnceCell::new(),
        }
    }

    /// [`object_entry`] of `object`, a value of this event: `detail`'s members are read once.
    pub(crate) fn entry(&self, object: &'a RawValue, key: &str) -> Option<&'a RawValue> {
        match self.get("detail") {
            Some(detail) if std::ptr::eq(detail, object) => {
                let members = self.detail.get_or_init(|| read_object(object));
                last_entry(members, key)
            }
            _ => object_entry(object, key),
        }
    }

    pub(crate) fn raw(&self) -> &'a RawValue {
        self.raw
    }

    /// The value of a top-level member that appears exactly once (a typed reader refuses a
    /// repeated member).
    pub(crate) fn get_once(&self, key: &str) -> Option<&'a RawValue> {
        let mut found = self.top.0.iter().filter(|(k, _)| k == key);
        let (_, value) = found.next()?;
        found.next().is_none().then_some(*value)
    }

    /// The value of a top-level member, as [`object_entry`] finds it.
    pub(crate) fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.top.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

/// The value of `key` in a raw object (the last one when the key repeats, as a JSON parser
/// that keeps one value per key would see it).
pub(crate) fn object_entry<'a>(raw: &'a RawValue, key: &str) -> Option<&'a RawValue> {
    last_entry(&read_object(raw), key)
}

/// The members of a raw object (none when it is not one).
fn read_object(raw: &RawValue) -> RawObject<'_> {
    if raw.get().starts_with('{') {
        serde_json::from_str(raw.get()).unwrap_or_default()
    } else {
        RawObject::default()
    }
}

/// The value of the last member named `key`.
fn last_entry<'a>(object: &RawObject<'a>, key: &str) -> Option<&'a RawValue> {
    object.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
}

/// The items of a raw array.
pub(crate) fn array_items(raw: &RawValue) -> Option<Vec<&RawValue>> {
    if !raw.get().starts_with('[') {
        return None;
    }
    serde_json::from_str(raw.get()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    #[test]
    fn dot_paths_and_indices_parse() {
        let p = EventPath::parse("$.detail.items[2].repo-name").unwrap();
        assert_eq!(
            p.segments(),
            [
                Segment::Key("detail".into()),
                Segment::Key("items".into()),
                Segment::Index(2),
                Segment::Key("repo-name".into())
            ]
        );
        assert!(EventPath::parse("$").unwrap().segments().is_empty());
    }

    #[test]
    fn unsupported_paths_say_why() {
        assert_eq!(EventPath::parse("detail.x"), Err(PathError::NoRoot));
        assert_eq!(EventPath::parse("$.detail.*"), Err(PathError::Wildcard));
        assert_eq!(EventPath::parse("$['detail']"), Err(PathError::Brackets));
        assert_eq!(EventPath::parse("$.detail..x"), Err(PathError::EmptyKey));
        assert_eq!(EventPath::parse("$.detail."), Err(PathError::EmptyKey));
        assert_eq!(EventPath::parse("$.de tail"), Err(PathError::BadCharacter(' ')));
    }

    #[test]
    fn resolution_keeps_raw_text_and_misses_quietly() {
        let event = raw(r#"{"detail":{"a":{"b": [1, 2]},"s":"x"},"resources":["r0"]}"#);
        let get = |p: &str| {
            EventPath::parse(p)
                .unwrap()
                .resolve(&event)
                .map(|v| v.get().to_owned())
        };
        assert_eq!(get("$.detail.a").as_deref(), Some(r#"{"b": [1, 2]}"#));
        assert_eq!(get("$.detail.a.b[1]").as_deref(), Some("2"));
        assert_eq!(get("$.resources[0]").as_deref(), Some(r#""r0""#));
        assert_eq!(get("$.resources[1]"), None);
        assert_eq!(get("$.detail.s.t"), None);
        assert_eq!(get("$.detail.missing"), None);
    }
}
