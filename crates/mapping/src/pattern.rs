//! Event patterns: the operators the mapping file allows, written in the file exactly as in
//! an EventBridge pattern, rendered back to EventBridge JSON, and matched the way EventBridge's
//! matcher does (all fields must match, any value of a field may match, arrays in the event
//! are flattened, exact values compare as JSON text).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::path::{EventView, array_items};

/// Operators the file accepts, in the words of the error messages.
pub const OPERATORS: &str = "exact values, prefix, anything-but, exists and numeric";

/// Numeric matching is limited to this magnitude by EventBridge's matcher.
pub const NUMERIC_LIMIT: f64 = 5.0e9;

/// The pattern of one rule: `source` and `detail-type` are required so a rule never matches
/// every event on the bus; `detail` filters are optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pattern {
    pub source: Vec<Matcher>,
    #[serde(rename = "detail-type")]
    pub detail_type: Vec<Matcher>,
    #[serde(default)]
    pub detail: Fields,
}

/// Named filters in file order; a value is a list of matchers or a nested object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fields(pub Vec<(String, Node)>);

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Matchers(Vec<Matcher>),
    Nested(Fields),
}

/// One element of a pattern array.
#[derive(Debug, Clone, PartialEq)]
pub enum Matcher {
    Exact(Literal),
    Prefix(String),
    AnythingBut(Vec<Literal>),
    Exists(bool),
    Numeric(Vec<(Comparison, f64)>),
}

/// A JSON scalar in a pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    /// A number as JSON text: EventBridge compares exact numbers textually (`5` ≠ `5.0`).
    Num(String),
    Bool(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Comparison {
    fn parse(s: &str) -> Option<Comparison> {
        Some(match s {
            "<" => Comparison::Lt,
            "<=" => Comparison::Le,
            "=" => Comparison::Eq,
            ">=" => Comparison::Ge,
            ">" => Comparison::Gt,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Comparison::Lt => "<",
            Comparison::Le => "<=",
            Comparison::Eq => "=",
            Comparison::Ge => ">=",
            Comparison::Gt => ">",
        }
    }

    fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Comparison::Lt => value < bound,
            Comparison::Le => value <= bound,
            Comparison::Eq => value == bound,
            Comparison::Ge => value >= bound,
            Comparison::Gt => value > bound,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading patterns from the mapping file. Errors go through serde so the TOML parser reports
// them with their line and column.

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of detail filters")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut fields = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    fields.push((key, map.next_value::<Node>()?));
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of matchers (e.g. [\"completed\"]) or a table of nested filters")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut matchers = Vec::new();
                while let Some(m) = seq.next_element::<Matcher>()? {
                    matchers.push(m);
                }
                Ok(Node::Matchers(matchers))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Node, A::Error> {
                Fields::deserialize(de::value::MapAccessDeserializer::new(map)).map(Node::Nested)
            }
        }
        deserializer.deserialize_any(NodeVisitor)
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MatcherVisitor;
        impl<'de> Visitor<'de> for MatcherVisitor {
            type Value = Matcher;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a matcher ({OPERATORS})")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Matcher, E> {
                Ok(Matcher::Exact(Literal::Str(v.to_owned())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Matcher, E> {
                Ok(Matcher::Exact(Literal::Num(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Matcher, E> {
                Ok(Matcher::Exact(Literal::Num(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Matcher, E> {
                number_text(v)
                    .map(|n| Matcher::Exact(Literal::Num(n)))
                    .ok_or_else(|| not_finite())
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Matcher, E> {
                Ok(Matcher::Exact(Literal::Bool(v)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Matcher, A::Error> {
                let Some(operator) = map.next_key::<String>()? else {
                    return Err(de::Error::custom(
                        "an empty matcher table; write e.g. { prefix = \"repo-\" }",
                    ));
                };
                let matcher = match operator.as_str() {
                    "prefix" => Matcher::Prefix(map.next_value()?),
                    "exists" => Matcher::Exists(map.next_value()?),
                    "anything-but" => Matcher::AnythingBut(map.next_value::<OneOrMany>()?.0),
                    "numeric" => Matcher::Numeric(map.next_value::<NumericRange>()?.0),
                    other => {
                        return Err(de::Error::custom(format!(
                            "unsupported pattern operator `{other}`; the mapping file allows {OPERATORS} \
                             (the operators the local emulator reproduces exactly)"
                        )));
                    }
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(de::Error::custom(format!(
                        "a matcher has exactly one operator, found `{operator}` and `{extra}`; \
                         put alternatives in separate list elements"
                    )));
                }
                Ok(matcher)
            }
        }
        deserializer.deserialize_any(MatcherVisitor)
    }
}

fn not_finite<E: de::Error>() -> E {
    E::custom("numbers in patterns must be finite")
}

/// `anything-but = "x"`, `anything-but = 3` or `anything-but = ["x", "y"]`.
struct OneOrMany(Vec<Literal>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LiteralsVisitor;
        impl<'de> Visitor<'de> for LiteralsVisitor {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a number, or a list of strings or of numbers")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![Literal::Str(v.to_owned())]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![Literal::Num(v.to_string())]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![Literal::Num(v.to_string())]))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<OneOrMany, E> {
                number_text(v)
                    .map(|n| OneOrMany(vec![Literal::Num(n)]))
                    .ok_or_else(|| not_finite())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(m) = seq.next_element::<Matcher>()? {
                    match m {
                        Matcher::Exact(lit @ (Literal::Str(_) | Literal::Num(_))) => out.push(lit),
                        _ => {
                            return Err(de::Error::custom(
                                "anything-but lists hold only strings or only numbers",
                            ));
                        }
                    }
                }
                Ok(OneOrMany(out))
            }
        }
        deserializer.deserialize_any(LiteralsVisitor)
    }
}

/// `numeric = [">", 0, "<=", 5]`: one or two comparisons.
struct NumericRange(Vec<(Comparison, f64)>);

impl<'de> Deserialize<'de> for NumericRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Item {
            Op(String),
            Int(i64),
            Float(f64),
        }
        let items = Vec::<Item>::deserialize(deserializer)?;
        let usage = "numeric takes one or two comparisons, e.g. [\">\", 0, \"<=\", 5]";
        if items.is_empty() || items.len() % 2 != 0 || items.len() > 4 {
            return Err(de::Error::custom(usage));
        }
        let mut out = Vec::new();
        for pair in items.chunks(2) {
            let (Item::Op(op), bound) = (&pair[0], &pair[1]) else {
                return Err(de::Error::custom(usage));
            };
            let op = Comparison::parse(op).ok_or_else(|| {
                de::Error::custom(format!("unknown comparison `{op}`; use <, <=, =, >= or >"))
            })?;
            let bound = match bound {
                #[allow(clippy::cast_precision_loss)]
                Item::Int(i) => *i as f64,
                Item::Float(f) => *f,
                Item::Op(_) => return Err(de::Error::custom(usage)),
            };
            out.push((op, bound));
        }
        Ok(NumericRange(out))
    }
}

/// A finite float as JSON number text.
fn number_text(v: f64) -> Option<String> {
    serde_json::Number::from_f64(v).map(|n| n.to_string())
}

// ---------------------------------------------------------------------------------------------
// Checks that need the whole pattern.

impl Pattern {
    /// Problems EventBridge would reject or the emulator could not reproduce, as messages.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (path, matchers) in self.flatten() {
            let at = path.join(".");
            if matchers.is_empty() {
                problems.push(format!(
                    "`{at}` has an empty list; EventBridge rejects empty pattern arrays"
                ));
            }
            for m in matchers {
                match m {
                    Matcher::AnythingBut(list) if list.is_empty() => {
                        problems.push(format!("`{at}`: anything-but needs at least one value"));
                    }
                    Matcher::AnythingBut(list)
                        if list.iter().any(|l| matches!(l, Literal::Str(_)))
                            && list.iter().any(|l| matches!(l, Literal::Num(_))) =>
                    {
                        problems.push(format!(
                            "`{at}`: anything-but lists hold only strings or only numbers"
                        ));
                    }
                    Matcher::Numeric(range) => {
                        if range
                            .iter()
                            .any(|(_, b)| !(-NUMERIC_LIMIT..=NUMERIC_LIMIT).contains(b))
                        {
                            problems.push(format!(
                                "`{at}`: numeric bounds must lie within ±5.0e9 (EventBridge's numeric matching range)"
                            ));
                        }
                        if range.len() == 2 && !is_lower_then_upper(range[0].0, range[1].0) {
                            problems.push(format!(
                                "`{at}`: a numeric range is a lower bound (> or >=) then an upper bound (< or <=)"
                            ));
                        }
                    }
                    _ => {}
                }
            }
        }
        problems
    }

    /// Every filter with its full path from the event root, e.g. `["detail", "repo", "visibility"]`.
    pub fn flatten(&self) -> Vec<(Vec<String>, &[Matcher])> {
        let mut out = vec![
            (vec!["source".to_owned()], self.source.as_slice()),
            (vec!["detail-type".to_owned()], self.detail_type.as_slice()),
        ];
        flatten_fields(&self.detail, &mut vec!["detail".to_owned()], &mut out);
        out
    }

    /// The pattern as EventBridge JSON.
    pub fn to_json(&self) -> Value {
        let mut top = Map::new();
        top.insert("source".into(), matchers_json(&self.source));
        top.insert("detail-type".into(), matchers_json(&self.detail_type));
        if !self.detail.0.is_empty() {
            top.insert("detail".into(), fields_json(&self.detail));
        }
        Value::Object(top)
    }

    /// Whether `event` matches; on a mismatch, the first filter that failed.
    pub fn matches(&self, event: &RawValue) -> Result<(), Mismatch> {
        self.matches_in(&EventView::new(event))
    }

    /// [`Pattern::matches`] on an event whose top level is already read.
    pub(crate) fn matches_in(&self, event: &EventView<'_>) -> Result<(), Mismatch> {
        for (path, matchers) in self.flatten() {
            let leaves = leaves_at(event, &path);
            if !matchers.iter().any(|m| m.matches(&leaves)) {
                return Err(Mismatch {
                    field: path.join("."),
                    expected: matchers_json(matchers).to_string(),
                    found: describe(&leaves),
                });
            }
        }
        Ok(())
    }
}

impl Pattern {
    /// [`Pattern::matches`] without the reason, for the hot path: `source` and `detail-type`
    /// first (they tell most rules apart), nothing allocated for a rule that does not match.
    pub(crate) fn is_match(&self, event: &EventView<'_>) -> bool {
        let top = |key: &str, matchers: &[Matcher]| any_matches(matchers, event.get(key));
        top("source", &self.source)
            && top("detail-type", &self.detail_type)
            && fields_match(event, &self.detail, event.get("detail").into_iter().collect())
    }
}

/// Whether any of `matchers` accepts the field whose value is `value` (`None`: absent). A
/// scalar is its own only leaf, so the usual case needs no list of leaves.
fn any_matches(matchers: &[Matcher], value: Option<&RawValue>) -> bool {
    match value {
        None => matchers.iter().any(|m| m.matches(&[])),
        Some(scalar) if !starts_array_or_object(scalar) => {
            matchers.iter().any(|m| m.matches(std::slice::from_ref(&scalar)))
        }
        Some(value) => {
            let leaves = leaves_below(vec![value]);
            matchers.iter().any(|m| m.matches(&leaves))
        }
    }
}

fn starts_array_or_object(value: &RawValue) -> bool {
    matches!(value.get().as_bytes().first(), Some(b'[' | b'{'))
}

/// Whether every filter of `fields` matches below `values` (the objects the fields are in).
fn fields_match<'a>(event: &EventView<'a>, fields: &Fields, values: Vec<&'a RawValue>) -> bool {
    fields
        .0
        .iter()
        .all(|(key, node)| match (node, values.as_slice()) {
            // The usual case, a field of one object (`detail`): its value is looked up directly.
            (Node::Matchers(matchers), [object]) if !object.get().starts_with('[') => {
                any_matches(matchers, event.entry(object, key))
            }
            _ => {
                let below: Vec<&RawValue> = flatten_arrays(&values)
                    .into_iter()
                    .filter_map(|v| event.entry(v, key))
                    .collect();
                match node {
                    Node::Matchers(matchers) => {
                        let leaves = leaves_below(below);
                        matchers.iter().any(|m| m.matches(&leaves))
                    }
                    Node::Nested(inner) => fields_match(event, inner, below),
                }
            }
        })
}

fn is_lower_then_upper(first: Comparison, second: Comparison) -> bool {
    matches!(first, Comparison::Gt | Comparison::Ge) && matches!(second, Comparison::Lt | Comparison::Le)
}

fn flatten_fields<'p>(
    fields: &'p Fields,
    prefix: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, &'p [Matcher])>,
) {
    for (key, node) in &fields.0 {
        prefix.push(key.clone());
        match node {
            Node::Matchers(m) => out.push((prefix.clone(), m.as_slice())),
            Node::Nested(inner) => flatten_fields(inner, prefix, out),
        }
        prefix.pop();
    }
}

fn fields_json(fields: &Fields) -> Value {
    let mut map = Map::new();
    for (key, node) in &fields.0 {
        let value = match node {
            Node::Matchers(m) => matchers_json(m),
            Node::Nested(inner) => fields_json(inner),
        };
        map.insert(key.clone(), value);
    }
    Value::Object(map)
}

fn matchers_json(matchers: &[Matcher]) -> Value {
    Value::Array(matchers.iter().map(Matcher::to_json).collect())
}

impl Literal {
    fn to_json(&self) -> Value {
        match self {
            Literal::Str(s) => Value::String(s.clone()),
            // Number texts come from serde_json or integer formatting, so they parse back.
            Literal::Num(n) => serde_json::from_str(n).unwrap_or(Value::Null),
            Literal::Bool(b) => Value::Bool(*b),
        }
    }

    /// Whether a leaf of the event equals this literal, compared as JSON text the way
    /// EventBridge's matcher does (strings by their decoded value).
    fn equals(&self, leaf: &RawValue) -> bool {
        match self {
            Literal::Str(s) => decoded_string(leaf).is_some_and(|v| *v == **s),
            Literal::Num(n) => leaf.get() == n,
            Literal::Bool(b) => leaf.get() == if *b { "true" } else { "false" },
        }
    }
}

impl Matcher {
    fn to_json(&self) -> Value {
        match self {
            Matcher::Exact(lit) => lit.to_json(),
            Matcher::Prefix(p) => json!({ "prefix": p }),
            Matcher::AnythingBut(list) if list.len() == 1 => json!({ "anything-but": list[0].to_json() }),
            Matcher::AnythingBut(list) => {
                json!({ "anything-but": list.iter().map(Literal::to_json).collect::<Vec<_>>() })
            }
            Matcher::Exists(b) => json!({ "exists": b }),
            Matcher::Numeric(range) => {
                let mut items = Vec::new();
                for (op, bound) in range {
                    items.push(Value::String(op.as_str().to_owned()));
                    items.push(bound_json(*bound));
                }
                json!({ "numeric": items })
            }
        }
    }

    /// Whether this matcher accepts the field whose leaf values are `leaves` (empty when the
    /// field is absent or holds only objects).
    fn matches(&self, leaves: &[&RawValue]) -> bool {
        match self {
            Matcher::Exact(lit) => leaves.iter().any(|leaf| lit.equals(leaf)),
            Matcher::Prefix(p) => leaves
                .iter()
                .any(|leaf| decoded_string(leaf).is_some_and(|s| s.starts_with(p))),
            Matcher::AnythingBut(list) => leaves.iter().any(|leaf| !list.iter().any(|lit| lit.equals(leaf))),
            Matcher::Exists(wanted) => leaves.is_empty() != *wanted,
            Matcher::Numeric(range) => leaves.iter().any(|leaf| {
                json_number(leaf).is_some_and(|v| range.iter().all(|(op, bound)| op.holds(v, *bound)))
            }),
        }
    }
}

/// Integral bounds render as integers, so the pattern reads as written.
fn bound_json(bound: f64) -> Value {
    #[allow(clippy::cast_possible_truncation)]
    if bound.fract() == 0.0 && bound.abs() <= NUMERIC_LIMIT {
        return Value::from(bound as i64);
    }
    serde_json::Number::from_f64(bound).map_or(Value::Null, Value::Number)
}

/// A string leaf's value: borrowed when it has no escapes (the leaf was read by serde_json,
/// so it holds no raw control character either, and its text between the quotes is its value).
fn decoded_string(leaf: &RawValue) -> Option<Cow<'_, str>> {
    let text = leaf.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(text).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// A JSON number (never a string holding digits: numeric matching is for numbers only).
fn json_number(leaf: &RawValue) -> Option<f64> {
    let text = leaf.get();
    if matches!(text.as_bytes().first(), Some(b'-' | b'0'..=b'9')) {
        text.parse().ok()
    } else {
        None
    }
}

/// The leaf values at `path`: arrays anywhere along the way are flattened, objects are not
/// leaves (EventBridge's `exists` works on leaves only).
fn leaves_at<'a>(event: &EventView<'a>, path: &[String]) -> Vec<&'a RawValue> {
    let (mut current, rest): (Vec<&RawValue>, &[String]) = match path.split_first() {
        Some((first, rest)) if event.raw().get().starts_with('{') => {
            (event.get(first).into_iter().collect(), rest)
        }
        _ => (vec![event.raw()], path),
    };
    for key in rest {
        current = flatten_arrays(&current)
            .into_iter()
            .filter_map(|v| event.entry(v, key))
            .collect();
    }
    leaves_below(current)
}

/// The scalar leaves of the values at a field: arrays flattened, objects left out.
fn leaves_below(values: Vec<&RawValue>) -> Vec<&RawValue> {
    flatten_arrays(&values)
        .into_iter()
        .filter(|v| !v.get().starts_with('{'))
        .collect()
}

fn flatten_arrays<'a>(values: &[&'a RawValue]) -> Vec<&'a RawValue> {
    let mut out = Vec::with_capacity(values.len());
    let mut stack: Vec<&RawValue> = values.iter().rev().copied().collect();
    while let Some(v) = stack.pop() {
        match array_items(v) {
            Some(items) => stack.extend(items.into_iter().rev()),
            None => out.push(v),
        }
    }
    out
}

fn describe(leaves: &[&RawValue]) -> String {
    match leaves {
        [] => "the field is absent".to_owned(),
        [one] => format!("the event has {}", clip(one.get())),
        many => format!(
            "the event has [{}]",
            many.iter().map(|l| clip(l.get())).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Event values in messages are bounded.
fn clip(text: &str) -> String {
    metrics_schema::text::bounded(text, 80).into_owned()
}

/// Why a rule's pattern did not match an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The dotted path of the first filter that failed, e.g. `detail.status`.
    pub field: String,
    /// That filter as EventBridge JSON.
    pub expected: String,
    /// What the event holds there.
    pub found: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} must match {}, but {}",
            self.field, self.expected, self.found
        )
    }
}
