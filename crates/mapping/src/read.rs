//! Reading a wrapped record in one pass: the wrapper, and in the same pass only the members of
//! the event that one metric's paths lead to.
//!
//! Each metric's paths are compiled at start into a trie over their keys ([`PathTrie`]). While
//! serde reads `event`, the trie says for every member whether to keep its raw value (a path
//! ends there), to descend into it (a path goes through it) or to skip it unread
//! ([`IgnoredAny`]). So the event, `detail` included, is read once and nothing is collected
//! that no path needs. A path's steps past an array index, and paths under a member that is
//! itself kept, are resolved afterwards on the kept raw value, as small as it is.
//!
//! Records of the usual shape are read by a scanner instead ([`scan`]), which keeps the same
//! values without serde's per-value costs; serde reads every other record and says what is
//! wrong with a malformed one.
//!
//! Lookups keep EventBridge's view of a repeated key: the last one counts. A kept value is
//! overwritten by a later one, and a repeated member that paths go through first forgets what
//! was read under its earlier occurrence.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::{DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::map::Mapping;
use crate::path::{EventPath, Segment, array_items, object_entry};
use crate::reason::{MapError, MapReason};
use crate::wrap::{EVENT, METRIC, short_error};
use metrics_schema::json::{CowStr, RawObject};

mod scan;

/// The paths one metric reads, as a trie over their leading keys.
#[derive(Debug, Clone)]
pub(crate) struct PathTrie {
    /// `nodes[0]` is the event itself.
    nodes: Vec<Node>,
    /// Per compiled path: the slot of the value it starts from, and the steps left after it.
    paths: Vec<(u32, Vec<Segment>)>,
    /// How many values a read keeps.
    slots: usize,
}

#[derive(Debug, Clone, Default)]
struct Node {
    /// Members that paths go through or end at; a handful per object.
    children: Vec<(Box<str>, u32)>,
    /// Where this member's raw value is kept, when a path ends here (it is then not descended
    /// into; deeper paths are resolved on the kept value).
    slot: Option<u32>,
    /// The slots under this node, forgotten when its key repeats.
    subtree: Range<u32>,
}

/// A path of a compiled metric: an index into its [`PathTrie`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct PathId(u32);

impl PathTrie {
    /// A trie with no paths: the event is read for its shape only.
    pub(crate) fn empty() -> PathTrie {
        PathTrie::build(&[])
    }

    /// Compiles `paths`; the event's path is `$` (no segment). Returns each path's id, in order.
    pub(crate) fn new(paths: &[&EventPath]) -> (PathTrie, Vec<PathId>) {
        let trie = PathTrie::build(paths);
        let ids = (0..paths.len()).map(|i| PathId(i as u32)).collect();
        (trie, ids)
    }

    fn build(paths: &[&EventPath]) -> PathTrie {
        let mut nodes = vec![Node::default()];
        // Each path's node: the end of its keys before any array index.
        let mut ends = Vec::with_capacity(paths.len());
        for path in paths {
            let mut at = 0usize;
            for segment in path.segments() {
                let Segment::Key(key) = segment else { break };
                at = match nodes[at].children.iter().find(|(k, _)| **k == **key) {
                    Some((_, child)) => *child as usize,
                    None => {
                        nodes.push(Node::default());
                        let child = nodes.len() - 1;
                        nodes[at].children.push((key.as_str().into(), child as u32));
                        child
                    }
                };
            }
            ends.push(at);
        }
        let mut ends_here = vec![false; nodes.len()];
        for node in &ends {
            ends_here[*node] = true;
        }
        // Slots in depth-first order, so every subtree's slots are one range. A node where a
        // path ends is kept whole, and nothing below it gets a slot.
        let mut slots = 0u32;
        assign(&mut nodes, &ends_here, 0, &mut slots);
        let paths = paths
            .iter()
            .map(|path| {
                // The value a path starts from: the first kept node on its way down.
                let mut at = 0usize;
                let mut taken = 0;
                while nodes[at].slot.is_none() {
                    let Some(Segment::Key(key)) = path.segments().get(taken) else {
                        break;
                    };
                    let Some((_, child)) = nodes[at].children.iter().find(|(k, _)| **k == **key) else {
                        break;
                    };
                    at = *child as usize;
                    taken += 1;
                }
                // Every path ends at a kept node or below one; `u32::MAX` (no slot, so the
                // path finds nothing) only stands in for a panic that cannot happen.
                let slot = nodes[at].slot.unwrap_or(u32::MAX);
                (slot, path.segments()[taken..].to_vec())
            })
            .collect();
        PathTrie {
            nodes,
            paths,
            slots: slots as usize,
        }
    }

    /// Whether the event itself is kept whole (a path of `$`): it is then read raw.
    pub(crate) fn keeps_event(&self) -> bool {
        self.nodes[0].slot.is_some()
    }

    /// The value at `path` in what `read` kept: `None` when a step is absent or has the wrong
    /// shape.
    pub(crate) fn resolve<'e>(&self, read: &Read<'e>, path: PathId) -> Option<&'e RawValue> {
        let (slot, rest) = &self.paths[path.0 as usize];
        let mut current = read.slots.get(*slot as usize)?.value?;
        for segment in rest {
            current = match segment {
                Segment::Key(key) => object_entry(current, key)?,
                Segment::Index(i) => array_items(current)?.get(*i).copied()?,
            };
        }
        Some(current)
    }

    /// Reads an event that is already apart (not inside a wrapper); anything but an object
    /// has no members, so every path misses.
    pub(crate) fn read_event<'e>(&self, event: &'e RawValue) -> Read<'e> {
        if !event.get().starts_with('{') {
            return Read::new(self);
        }
        read_event(self, event).unwrap_or_else(|_| Read::new(self))
    }

    /// The member name, as it lies in the record, that `path`'s value was read under, when the
    /// path ends at a kept member and its name was read without escapes.
    pub(crate) fn key<'e>(&self, read: &Read<'e>, path: PathId) -> Option<&'e str> {
        let (slot, rest) = &self.paths[path.0 as usize];
        if !rest.is_empty() {
            return None;
        }
        read.slots.get(*slot as usize)?.key
    }

    /// Whether `path`'s value is a string known to hold no escapes (the scanner found it so).
    pub(crate) fn is_plain_string(&self, read: &Read<'_>, path: PathId) -> bool {
        let (slot, rest) = &self.paths[path.0 as usize];
        rest.is_empty() && read.slots.get(*slot as usize).is_some_and(|kept| kept.plain)
    }

    /// The event's own raw value, when it is kept.
    pub(crate) fn event<'e>(&self, read: &Read<'e>) -> Option<&'e RawValue> {
        self.nodes[0]
            .slot
            .and_then(|slot| read.slots.get(slot as usize)?.value)
    }
}

fn assign(nodes: &mut [Node], ends_here: &[bool], at: usize, next: &mut u32) {
    let start = *next;
    if ends_here[at] {
        nodes[at].slot = Some(*next);
        *next += 1;
    } else {
        for i in 0..nodes[at].children.len() {
            let child = nodes[at].children[i].1 as usize;
            assign(nodes, ends_here, child, next);
        }
    }
    nodes[at].subtree = start..*next;
}

/// The raw values one record's read kept, by slot.
#[derive(Debug)]
pub(crate) struct Read<'e> {
    slots: Vec<Kept<'e>>,
}

/// What a read kept in one slot.
#[derive(Debug, Clone, Copy, Default)]
struct Kept<'e> {
    value: Option<&'e RawValue>,
    /// The member name the value was kept under, when it was read without escapes.
    key: Option<&'e str>,
    /// The value is a string without escapes: the scanner saw it whole, so converting it
    /// need not look for escapes again (serde's pass leaves this `false`).
    plain: bool,
}

impl<'e> Read<'e> {
    fn new(trie: &PathTrie) -> Read<'e> {
        Read {
            slots: vec![Kept::default(); trie.slots],
        }
    }

    /// Keeps `value`, read under `key`, in `slot`.
    fn keep(&mut self, slot: u32, value: &'e RawValue, key: Option<&'e str>, plain: bool) {
        if let Some(kept) = self.slots.get_mut(slot as usize) {
            *kept = Kept {
                value: Some(value),
                key,
                plain,
            };
        }
    }

    /// Forgets the values of `slots` (their keys stay: a name is the same text wherever it
    /// was read).
    fn forget(&mut self, slots: Range<u32>) {
        for slot in slots {
            if let Some(kept) = self.slots.get_mut(slot as usize) {
                kept.value = None;
                kept.plain = false;
            }
        }
    }
}

/// A wrapped record, read: its metric's name and what its paths found.
pub(crate) struct Wrapped<'m, 'e> {
    pub(crate) metric: &'m crate::map::MetricMapping,
    pub(crate) read: Read<'e>,
    /// The record as text (it is checked for UTF-8 once, here).
    pub(crate) text: &'e str,
}

/// Reads a wrapped record (`{"metric":…,"event":…}`, exactly those two members) and, in the
/// same pass, what its metric's paths need from the event. When `event` comes before `metric`
/// (a wrapper with sorted keys), the event is kept raw and read with the trie afterwards.
pub(crate) fn read_wrapped<'m, 'e>(
    mapping: &'m Mapping,
    record: &'e [u8],
) -> Result<Wrapped<'m, 'e>, MapError> {
    let text = std::str::from_utf8(record)
        .map_err(|_| MapError::new(MapReason::InvalidWrapper, "the record is not UTF-8"))?;
    if let Some((metric, read)) = scan::scan_wrapped(mapping, text) {
        return Ok(Wrapped { metric, read, text });
    }
    read_wrapped_with_serde(mapping, text)
}

/// [`read_wrapped`] by serde, for any record: the one that says why a record is malformed.
fn read_wrapped_with_serde<'m, 'e>(mapping: &'m Mapping, text: &'e str) -> Result<Wrapped<'m, 'e>, MapError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = WrapperSeed { mapping }
        .deserialize(&mut de)
        .and_then(|parsed| de.end().map(|()| parsed))
        .map_err(invalid_wrapper)?;
    let (name, event) = parsed;
    let Some(metric) = mapping.metric(&name) else {
        return Err(MapError::new(
            MapReason::UnknownMetric,
            format!("no metric named {} in the mapping", crate::map::short(&name)),
        ));
    };
    let read = match event {
        Event::Read(read) => read,
        Event::Raw(raw) => read_event(metric.trie(), raw).map_err(invalid_wrapper)?,
        Event::Skipped => Read::new(metric.trie()),
    };
    Ok(Wrapped { metric, read, text })
}

fn invalid_wrapper(e: serde_json::Error) -> MapError {
    MapError::new(
        MapReason::InvalidWrapper,
        format!(
            "expected {{\"metric\": <name>, \"event\": <object>}}: {}",
            short_error(&e)
        ),
    )
}

/// Reads a raw event (known to be an object) with the trie.
fn read_event<'e>(trie: &PathTrie, raw: &'e RawValue) -> Result<Read<'e>, serde_json::Error> {
    let mut read = Read::new(trie);
    if let Some(slot) = trie.nodes[0].slot {
        read.keep(slot, raw, None, false);
        return Ok(read);
    }
    EventSeed {
        trie,
        read: &mut read,
    }
    .deserialize(&mut serde_json::Deserializer::from_str(raw.get()))?;
    Ok(read)
}

/// What the pass made of `event`.
enum Event<'e> {
    /// Read with the metric's trie (`metric` came first).
    Read(Read<'e>),
    /// Kept raw, to be read once the metric is known (`event` came first).
    Raw(&'e RawValue),
    /// Read for its shape only: the metric is not in the mapping.
    Skipped,
}

struct WrapperSeed<'m> {
    mapping: &'m Mapping,
}

impl<'de> DeserializeSeed<'de> for WrapperSeed<'_> {
    type Value = (std::borrow::Cow<'de, str>, Event<'de>);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for WrapperSeed<'_> {
    type Value = (std::borrow::Cow<'de, str>, Event<'de>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with `metric` and `event`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut metric, mut event) = (None::<std::borrow::Cow<'de, str>>, None);
        while let Some(CowStr(key)) = map.next_key()? {
            match key.as_ref() {
                METRIC if metric.is_none() => metric = Some(map.next_value::<CowStr<'de>>()?.0),
                EVENT if event.is_none() => {
                    let known = metric.as_deref().map(|name| self.mapping.metric(name));
                    event = Some(match known {
                        Some(Some(m)) if !m.trie().keeps_event() => {
                            let mut read = Read::new(m.trie());
                            map.next_value_seed(EventSeed {
                                trie: m.trie(),
                                read: &mut read,
                            })?;
                            Event::Read(read)
                        }
                        Some(None) => {
                            map.next_value_seed(EventSeed {
                                trie: &PathTrie::empty(),
                                read: &mut Read { slots: Vec::new() },
                            })?;
                            Event::Skipped
                        }
                        // The metric is not known yet, or reads the event whole.
                        _ => Event::Raw(map.next_value_seed(RawObjectSeed)?),
                    });
                }
                METRIC | EVENT => return Err(A::Error::custom(format!("duplicate field `{key}`"))),
                _ => return Err(A::Error::custom(format!("unknown field `{key}`"))),
            }
        }
        Ok((
            metric.ok_or_else(|| A::Error::missing_field(METRIC))?,
            event.ok_or_else(|| A::Error::missing_field(EVENT))?,
        ))
    }
}

/// A raw value that must be an object; anything else fails as reading it as one would.
struct RawObjectSeed;

impl<'de> DeserializeSeed<'de> for RawObjectSeed {
    type Value = &'de RawValue;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        let raw: &'de RawValue = serde::Deserialize::deserialize(deserializer)?;
        if raw.get().starts_with('{') {
            return Ok(raw);
        }
        // Only on the error path: read it as an object for serde's own message.
        match serde_json::from_str::<RawObject<'_>>(raw.get()) {
            Err(e) => Err(D::Error::custom(e)),
            Ok(_) => Ok(raw),
        }
    }
}

/// The event: an object, read with the trie from its root.
struct EventSeed<'t, 'r, 'e> {
    trie: &'t PathTrie,
    read: &'r mut Read<'e>,
}

impl<'de> DeserializeSeed<'de> for EventSeed<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if let Some(slot) = self.trie.nodes[0].slot {
            let raw = RawObjectSeed.deserialize(deserializer)?;
            self.read.keep(slot, raw, None, false);
            return Ok(());
        }
        deserializer.deserialize_map(NodeVisitor {
            trie: self.trie,
            node: 0,
            read: self.read,
        })
    }
}

/// A member that paths go through: its members are read when it is an object; any other
/// value is skipped (the paths through it find nothing).
struct NodeSeed<'t, 'r, 'e> {
    trie: &'t PathTrie,
    node: usize,
    read: &'r mut Read<'e>,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(NodeVisitor {
            trie: self.trie,
            node: self.node,
            read: self.read,
        })
    }
}

struct NodeVisitor<'t, 'r, 'e> {
    trie: &'t PathTrie,
    node: usize,
    read: &'r mut Read<'e>,
}

impl<'de> Visitor<'de> for NodeVisitor<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let children = &self.trie.nodes[self.node].children;
        while let Some(CowStr(key)) = map.next_key()? {
            let Some(&(_, child)) = children.iter().find(|(k, _)| **k == *key) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let node = &self.trie.nodes[child as usize];
            match node.slot {
                Some(slot) => {
                    let value = map.next_value::<&'de RawValue>()?;
                    let key = match key {
                        Cow::Borrowed(key) => Some(key),
                        Cow::Owned(_) => None,
                    };
                    self.read.keep(slot, value, key, false);
                }
                None => {
                    // A repeated key: only its last occurrence counts.
                    self.read.forget(node.subtree.clone());
                    map.next_value_seed(NodeSeed {
                        trie: self.trie,
                        node: child as usize,
                        read: &mut *self.read,
                    })?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What each path finds in `event`, read in one pass.
    fn found(paths: &[&str], event: &str) -> Vec<Option<String>> {
        let parsed: Vec<EventPath> = paths.iter().map(|p| EventPath::parse(p).unwrap()).collect();
        let (trie, ids) = PathTrie::new(&parsed.iter().collect::<Vec<_>>());
        let raw: Box<RawValue> = serde_json::from_str(event).unwrap();
        let read = trie.read_event(&raw);
        ids.iter()
            .map(|id| trie.resolve(&read, *id).map(|v| v.get().to_owned()))
            .collect()
    }

    fn some(values: &[&str]) -> Vec<Option<String>> {
        values.iter().map(|v| Some((*v).to_owned())).collect()
    }

    #[test]
    fn paths_find_their_values_and_miss_quietly() {
        let event = r#"{"id":"e","detail":{"a":{"b":[1,{"c":"x"}]},"n":5,"s":"t"},"resources":["r0"]}"#;
        assert_eq!(
            found(
                &["$.id", "$.detail.n", "$.detail.a.b[1].c", "$.resources[0]"],
                event
            ),
            some(&[r#""e""#, "5", r#""x""#, r#""r0""#])
        );
        assert_eq!(
            found(
                &[
                    "$.detail.missing",
                    "$.detail.s.t",
                    "$.resources[1]",
                    "$.detail.n.x"
                ],
                event
            ),
            [None, None, None, None]
        );
    }

    #[test]
    fn a_kept_member_also_serves_the_paths_below_it() {
        let event = r#"{"detail":{"a":{"b":2},"c":3}}"#;
        assert_eq!(
            found(&["$.detail.a.b", "$.detail", "$.detail.c"], event),
            some(&["2", r#"{"a":{"b":2},"c":3}"#, "3"])
        );
        assert_eq!(found(&["$", "$.detail.c"], event), some(&[event, "3"]));
    }

    #[test]
    fn the_last_of_a_repeated_key_counts() {
        let event = r#"{"detail":{"a":1,"b":2,"a":3},"detail":{"b":4,"a":5,"b":6}}"#;
        assert_eq!(found(&["$.detail.a", "$.detail.b"], event), some(&["5", "6"]));
        // A later occurrence that is not an object, or lacks the member, hides the earlier one.
        assert_eq!(found(&["$.detail.a"], r#"{"detail":{"a":1},"detail":7}"#), [None]);
        assert_eq!(
            found(&["$.detail.a"], r#"{"detail":{"a":1},"detail":{}}"#),
            [None]
        );
        assert_eq!(found(&["$.id"], r#"{"id":"1","id":"2"}"#), some(&[r#""2""#]));
    }

    #[test]
    fn wrappers_must_be_exactly_a_name_and_an_object() {
        let mapping = Mapping::from_toml(
            "[[metric]]\nname = \"m-1\"\npattern = { source = [\"s\"], detail-type = [\"t\"] }\n\
             tenant_id = \"$.detail.tenant_id\"\n",
        )
        .unwrap();
        let read = read_wrapped(&mapping, br#"{"event":{"id":"1","id":"2"},"metric":"m\u002d1"}"#).unwrap();
        assert_eq!(read.metric.name(), "m-1");
        for bad in [
            &br#"{"metric":"m-1"}"#[..],
            br#"{"metric":"m-1","event":[1]}"#,
            br#"{"metric":5,"event":{}}"#,
            br#"{"metric":"m-1","event":{},"x":1}"#,
            br#"{"metric":"m-1","metric":"n","event":{}}"#,
            br#"{"metric":"m-1","event":{"#,
            br#"{"metric":"m-1","event":{}} x"#,
            b"{\"metric\":\"\xff\",\"event\":{}}",
        ] {
            let Err(e) = read_wrapped(&mapping, bad) else {
                panic!("{}", String::from_utf8_lossy(bad));
            };
            assert_eq!(
                e.reason,
                MapReason::InvalidWrapper,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn escaped_keys_match_their_decoded_text() {
        assert_eq!(
            found(
                &["$.detail.repo-name"],
                r#"{"det\u0061il":{"repo\u002dname":"x"}}"#
            ),
            some(&[r#""x""#])
        );
    }
}
