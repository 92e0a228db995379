//! The mapping itself: a wrapped EventBridge event in, a unified event out, as proper JSON.
//! One implementation, run by metrics-enrich on every wrapped record, by the local pipeline and
//! by `metrics-lake mappings apply`.
//!
//! - A missing (or `null`) field fails the record with `missing_field` when it is required;
//!   an optional one takes its `default`, or is left out.
//! - Strings are decoded and written escaped, so free text arrives intact; `id` refuses
//!   control characters.
//! - `number` takes a JSON number or a string holding one, `bool` a boolean or
//!   `"true"`/`"false"`; an array or object where a scalar is declared fails (`not_a_scalar`).
//! - `event_time` is read in its declared format and written as the unified event accepts it.
//!
//! The output is then validated by the schema like any other unified event, so the store's
//! limits (a value over 2,048 bytes is `value_too_long`) apply in one place. Two paths lead
//! there from the same converted values ([`crate::mapped`]): [`Mapping::map_record`] writes
//! the unified event's JSON (for [`metrics_schema::parse_event`], the emulator and the CLI);
//! [`Mapping::map_parts`] hands the values to [`metrics_schema::validate`] as the parts that
//! parsing that JSON would give, without writing and reading it back (metrics-enrich).

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::mapped::{Default, Mapped, Value, convert, convert_time};
use crate::model::{DEFAULT_EVENT_ID, DEFAULT_EVENT_TIME};
use crate::model::{FieldKind, FieldSpec, MetricSpec, TimeFormat, TimeSpec};
use crate::path::EventPath;
use crate::read::{PathId, PathTrie, Read, read_wrapped};
use crate::reason::{MapError, MapReason};
use crate::section::Section;
use crate::source::{Reserved, Source};
use metrics_schema::event::{DATA, EVENT_TIME, METADATA, METRIC_NAME};
use metrics_schema::json::{MaybeObject, MaybeStr, TopLevel, write_str};

/// Every metric's mapping, by name.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    /// Sorted by name (names are unique).
    metrics: Vec<MetricMapping>,
}

/// One metric's mapping, compiled: sources parsed, keys escaped once, paths in one trie.
#[derive(Debug, Clone)]
pub struct MetricMapping {
    name: String,
    /// The name as a JSON string, for the direct path.
    name_json: Box<RawValue>,
    tenant_id: Field,
    event_id: Field,
    event_time: TimeField,
    metadata: Vec<Field>,
    data: Vec<Field>,
    extra: Vec<Field>,
    /// Every path the fields read, so one pass over the event finds them all.
    trie: PathTrie,
    /// `$.time`, the fallback of an optional event time.
    envelope_time: PathId,
}

#[derive(Debug, Clone)]
struct Field {
    /// The member's name in the unified event.
    name: String,
    /// `"name":`, escaped.
    key: Vec<u8>,
    /// `metadata.name`, for messages.
    at: String,
    source: Source,
    /// Where the source's path is in the metric's trie (`None` for a reserved variable).
    path: Option<PathId>,
    kind: FieldKind,
    section: Section,
    required: bool,
    default: Option<Default>,
}

#[derive(Debug, Clone)]
struct TimeField {
    source: Source,
    path: Option<PathId>,
    format: TimeFormat,
    required: bool,
}

impl Mapping {
    pub(crate) fn new(mut metrics: Vec<MetricMapping>) -> Mapping {
        metrics.sort_by(|a, b| a.name.cmp(&b.name));
        Mapping { metrics }
    }

    /// The mapping of one metric.
    pub fn metric(&self, name: &str) -> Option<&MetricMapping> {
        // A handful of metrics, mostly of different lengths: a scan that compares lengths
        // first compares few names, where a binary search compares several.
        self.metrics
            .iter()
            .find(|m| m.name.len() == name.len() && m.name == name)
    }

    pub fn len(&self) -> usize {
        self.metrics.len()
    }

    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }

    /// Maps a wrapped record (`{"metric":…,"event":…}`) into `out` (cleared first): the
    /// unified event's JSON, not yet validated.
    pub fn map_record(&self, record: &[u8], out: &mut Vec<u8>) -> Result<(), MapError> {
        // One pass reads the wrapper and, in the event, only what the metric's paths need.
        let wrapped = read_wrapped(self, record)?;
        wrapped.metric.map_with(&wrapped.read, out)
    }

    /// Maps a wrapped record straight into the unified event's parts, for
    /// [`metrics_schema::validate`]: the parts [`metrics_schema::parse_event`] reads from what
    /// [`Mapping::map_record`] writes, borrowing from the record (the returned text, the
    /// parts' `source`) and the mapping. `None` when the record is to take the written path:
    /// it does not map (the written path says why), or a value would be written as text found
    /// in neither (an epoch time in milliseconds, a string re-escaped, the event without
    /// `detail`).
    pub fn map_parts<'a>(&'a self, record: &'a [u8]) -> Option<(TopLevel<'a>, &'a str)> {
        let wrapped = read_wrapped(self, record).ok()?;
        let parts = wrapped.metric.parts(&wrapped.read)?;
        Some((parts, wrapped.text))
    }
}

impl MetricMapping {
    /// Compiles a metric that passed the checks; `None` if a source does not parse (which the
    /// checks report first).
    pub(crate) fn compile(metric: &MetricSpec) -> Option<MetricMapping> {
        let core = |section: Section, from: &str| -> Option<Field> {
            Some(Field {
                name: section.describe().to_owned(),
                key: key_bytes(section.describe()),
                at: section.describe().to_owned(),
                source: Source::parse(from).ok()?,
                path: None,
                kind: FieldKind::Id,
                section,
                required: true,
                default: None,
            })
        };
        let fields = |section: Section, specs: &crate::model::Ordered<FieldSpec>| -> Option<Vec<Field>> {
            specs
                .iter()
                .map(|(name, spec)| {
                    Some(Field {
                        name: name.to_owned(),
                        key: key_bytes(name),
                        at: format!("{}.{name}", section.describe()),
                        source: Source::parse(&spec.from).ok()?,
                        path: None,
                        kind: spec.kind,
                        section,
                        required: spec.is_required(),
                        default: spec
                            .default
                            .as_ref()
                            .map(|d| Default::new(d, section != Section::Data)),
                    })
                })
                .collect()
        };
        let time = metric
            .event_time
            .clone()
            .unwrap_or_else(|| TimeSpec::path(DEFAULT_EVENT_TIME));
        let mut name_json = Vec::new();
        write_str(&mut name_json, &metric.name);
        let mut mapping = MetricMapping {
            name: metric.name.clone(),
            name_json: RawValue::from_string(String::from_utf8(name_json).ok()?).ok()?,
            tenant_id: core(Section::TenantId, metric.tenant_id.as_deref()?)?,
            event_id: core(
                Section::EventId,
                metric.event_id.as_deref().unwrap_or(DEFAULT_EVENT_ID),
            )?,
            event_time: TimeField {
                source: Source::parse(&time.from).ok()?,
                path: None,
                format: time.format,
                required: time.required,
            },
            metadata: fields(Section::Metadata, &metric.metadata)?,
            data: fields(Section::Data, &metric.data)?,
            extra: fields(Section::Extra, &metric.extra)?,
            trie: PathTrie::empty(),
            envelope_time: PathId::default(),
        };
        mapping.compile_paths()?;
        Some(mapping)
    }

    /// Builds the trie of every path the metric reads and points each field at its path. The
    /// reserved variables that are the event itself read the path `$`.
    fn compile_paths(&mut self) -> Option<()> {
        let whole = EventPath::parse("$").ok()?;
        let envelope_time = EventPath::parse(DEFAULT_EVENT_TIME_PATH).ok()?;
        let path_of = |source: &Source| match source {
            Source::Path(path) => Some(path.clone()),
            Source::Reserved(Reserved::Event | Reserved::EventJson) => Some(whole.clone()),
            Source::Reserved(_) => None,
        };
        let mut paths: Vec<EventPath> = Vec::new();
        let mut index = |path: Option<EventPath>| {
            path.map(|path| match paths.iter().position(|p| *p == path) {
                Some(i) => i,
                None => {
                    paths.push(path);
                    paths.len() - 1
                }
            })
        };
        let fields = [&mut self.tenant_id, &mut self.event_id]
            .into_iter()
            .chain(&mut self.metadata)
            .chain(&mut self.data)
            .chain(&mut self.extra);
        let field_paths: Vec<Option<usize>> = fields.map(|f| index(path_of(&f.source))).collect();
        let time_path = index(path_of(&self.event_time.source));
        let envelope = index(Some(envelope_time)).unwrap_or_default();
        let (trie, ids) = PathTrie::new(&paths.iter().collect::<Vec<_>>());
        let fields = [&mut self.tenant_id, &mut self.event_id]
            .into_iter()
            .chain(&mut self.metadata)
            .chain(&mut self.data)
            .chain(&mut self.extra);
        for (field, path) in fields.zip(field_paths) {
            field.path = path.map(|i| ids[i]);
        }
        self.event_time.path = time_path.map(|i| ids[i]);
        self.envelope_time = ids[envelope];
        self.trie = trie;
        Some(())
    }

    pub(crate) fn trie(&self) -> &PathTrie {
        &self.trie
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Maps one EventBridge event (the envelope, with `detail`) into `out` (cleared first).
    pub fn map(&self, event: &RawValue, out: &mut Vec<u8>) -> Result<(), MapError> {
        self.map_with(&self.trie.read_event(event), out)
    }

    fn map_with(&self, r: &Read<'_>, out: &mut Vec<u8>) -> Result<(), MapError> {
        out.clear();
        out.push(b'{');
        out.extend_from_slice(&key_bytes(METRIC_NAME));
        write_str(out, &self.name);
        out.push(b',');
        out.extend_from_slice(&key_bytes(METADATA));
        out.push(b'{');
        out.extend_from_slice(&self.tenant_id.key);
        self.core(&self.tenant_id, r)?.write(out);
        out.push(b',');
        out.extend_from_slice(&self.event_id.key);
        self.core(&self.event_id, r)?.write(out);
        for field in &self.metadata {
            write_member(field, self.member(field, r)?, out);
        }
        out.extend_from_slice(b"},");
        out.extend_from_slice(&key_bytes(DATA));
        out.push(b'{');
        out.extend_from_slice(&key_bytes(EVENT_TIME));
        self.event_time(r)?.write(out);
        for field in &self.data {
            write_member(field, self.member(field, r)?, out);
        }
        out.push(b'}');
        for field in &self.extra {
            write_member(field, self.member(field, r)?, out);
        }
        out.push(b'}');
        Ok(())
    }

    /// The parts of the event [`MetricMapping::map_with`] writes, from the same values, or
    /// `None` (see [`Mapping::map_parts`]).
    fn parts<'a>(&'a self, r: &Read<'a>) -> Option<TopLevel<'a>> {
        // A member named as in the event takes its name from the record, so that writing the
        // event back can copy it there in one run with the value that follows it.
        let name = |field: &'a Field| {
            let sent = field.path.and_then(|path| self.trie.key(r, path));
            Cow::Borrowed(sent.filter(|key| *key == field.name).unwrap_or(&field.name))
        };
        // Room for the two dimensions metrics-enrich adds (`tenant_name`, `environment`), so
        // adding them does not move the list.
        let mut metadata = Vec::with_capacity(2 + self.metadata.len() + 2);
        for field in [&self.tenant_id, &self.event_id] {
            let value = self.core(field, r).ok()?.into_str()?;
            metadata.push((name(field), MaybeStr::Str(value)));
        }
        for field in &self.metadata {
            if let Some(value) = self.member(field, r).ok()? {
                metadata.push((name(field), MaybeStr::Str(value.into_str()?)));
            }
        }
        let mut data = Vec::with_capacity(1 + self.data.len());
        data.push((Cow::Borrowed(EVENT_TIME), self.event_time(r).ok()?.into_raw()?));
        for field in &self.data {
            if let Some(value) = self.member(field, r).ok()? {
                data.push((name(field), value.into_raw()?));
            }
        }
        let mut entries = Vec::with_capacity(1 + self.extra.len());
        entries.push((Cow::Borrowed(METRIC_NAME), &*self.name_json));
        for field in &self.extra {
            if let Some(value) = self.member(field, r).ok()? {
                entries.push((name(field), value.into_raw()?));
            }
        }
        Some(TopLevel {
            entries,
            metadata: Some(MaybeObject::Object(metadata)),
            data: Some(MaybeObject::Object(data)),
            repeated: None,
        })
    }

    /// A metadata, data or extra field's value, its default, or `None` for a missing optional
    /// field.
    fn member<'a>(&'a self, field: &'a Field, r: &Read<'a>) -> Result<Option<Mapped<'a>>, MapError> {
        match self.value(&field.source, field.path, r) {
            Some(value) => convert(field.kind, field.section != Section::Data, &field.at, value).map(Some),
            None if field.required => Err(missing(&field.at, &field.source)),
            None => Ok(field.default.as_ref().map(Default::mapped)),
        }
    }

    /// The value of a required core field (`tenant_id`, `event_id`).
    fn core<'a>(&'a self, field: &'a Field, r: &Read<'a>) -> Result<Mapped<'a>, MapError> {
        let value = self
            .value(&field.source, field.path, r)
            .ok_or_else(|| missing(&field.at, &field.source))?;
        convert(field.kind, true, &field.at, value)
    }

    fn event_time<'a>(&'a self, r: &Read<'a>) -> Result<Mapped<'a>, MapError> {
        let time = &self.event_time;
        match self.value(&time.source, time.path, r) {
            Some(Value::Raw(raw) | Value::PlainStr(raw)) => convert_time(raw, time.format),
            Some(_) => Err(MapError::new(
                MapReason::InvalidRfc3339Time,
                "event_time: the source is not a time",
            )),
            None if time.required => Err(missing(EVENT_TIME, &time.source)),
            // An optional event time falls back to the envelope's, as if none were mapped.
            None => match self
                .trie
                .resolve(r, self.envelope_time)
                .filter(|raw| raw.get() != "null")
            {
                Some(raw) => convert_time(raw, TimeFormat::Auto),
                None => Err(MapError::new(
                    MapReason::MissingField,
                    format!("event_time: {} and $.time are missing", source_text(&time.source)),
                )),
            },
        }
    }

    fn value<'a>(&'a self, source: &Source, path: Option<PathId>, r: &Read<'a>) -> Option<Value<'a>> {
        match source {
            Source::Path(_) => {
                let path = path?;
                let raw = self.trie.resolve(r, path).filter(|raw| raw.get() != "null")?;
                Some(if self.trie.is_plain_string(r, path) {
                    Value::PlainStr(raw)
                } else {
                    Value::Raw(raw)
                })
            }
            Source::Reserved(Reserved::EventJson) => self.trie.event(r).map(Value::Raw),
            Source::Reserved(Reserved::Event) => self.trie.event(r).map(Value::EventWithoutDetail),
            Source::Reserved(Reserved::RuleName) => Some(Value::Text(&self.name)),
            // Refused by the checks: the rule delivers the event alone.
            Source::Reserved(Reserved::RuleArn | Reserved::IngestionTime) => None,
        }
    }
}

/// `,"name":value`, or nothing for a missing optional field.
fn write_member(field: &Field, value: Option<Mapped<'_>>, out: &mut Vec<u8>) {
    if let Some(value) = value {
        out.push(b',');
        out.extend_from_slice(&field.key);
        value.write(out);
    }
}

/// `time` in the envelope: the fallback of an optional event time.
const DEFAULT_EVENT_TIME_PATH: &str = "$.time";

fn missing(at: &str, source: &Source) -> MapError {
    MapError::new(
        MapReason::MissingField,
        format!("{at}: {} is missing", source_text(source)),
    )
}

fn source_text(source: &Source) -> &str {
    match source {
        Source::Path(path) => path.as_str(),
        Source::Reserved(r) => r.name(),
    }
}

fn key_bytes(name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 3);
    write_str(&mut key, name);
    key.push(b':');
    key
}

/// A name from the record, bounded so a hostile one cannot bloat a log line.
pub(crate) fn short(name: &str) -> String {
    let mut end = name.len().min(64);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}", &name[..end])
}
