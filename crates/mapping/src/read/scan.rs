//! Reading a wrapped record of the usual shape without serde: a scanner that checks the JSON
//! grammar as serde_json does, keeps the spans of the values the metric's paths end at, and
//! steps over every other member byte by byte (strings, most of a record, eight bytes at a
//! time).
//!
//! It takes only what it is sure of: `{"metric":<name>,"event":<object>}` in that order, a
//! known metric, no escape in the name or in any member name on a path, and an object wherever
//! a path goes through. Anything else, malformed input included, gives `None`, and the record
//! is read by serde ([`super::read_wrapped`] does both), so every outcome and message stays
//! serde's. Where it answers, it keeps what the serde pass keeps: the same values under the
//! same names, the last of a repeated member.

use serde::de::value::{BorrowedStrDeserializer, Error as ValueError};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};
use serde_json::value::RawValue;

use super::{PathTrie, Read};
use crate::wrap::{EVENT, METRIC};
use metrics_schema::json::special_bytes;

/// The wrapper's members, the metric's name and what the metric's paths found, when `text` is
/// a wrapped record of the usual shape whose metric the mapping knows.
pub(super) fn scan_wrapped<'m, 'e>(
    mapping: &'m crate::map::Mapping,
    text: &'e str,
) -> Option<(&'m crate::map::MetricMapping, Read<'e>)> {
    let mut scan = Scanner { text, at: 0 };
    scan.expect(b'{')?;
    scan.expect_key(METRIC)?;
    scan.expect(b'"')?;
    let name = scan.plain_string()?;
    let metric = mapping.metric(name)?;
    scan.expect(b',')?;
    scan.expect_key(EVENT)?;
    scan.skip_whitespace();
    let trie = metric.trie();
    let mut read = Read::new(trie);
    match trie.nodes[0].slot {
        // The event itself is kept: the paths below it are resolved on its text.
        Some(slot) => {
            let start = scan.at;
            if scan.peek()? != b'{' {
                return None;
            }
            scan.value()?;
            read.keep(slot, raw_value(&text[start..scan.at])?, None, false);
        }
        None => {
            scan.expect(b'{')?;
            scan.members(trie, 0, &mut read)?;
        }
    }
    scan.expect(b'}')?;
    scan.skip_whitespace();
    (scan.at == text.len()).then_some((metric, read))
}

/// Checked JSON text as serde_json's borrowed [`RawValue`], handed over the way serde_json's
/// own deserializer hands one over (a map of one private key to the text), so no unsafe code
/// is needed. `None` if serde_json ever refuses it; the record is then read by serde.
fn raw_value(json: &str) -> Option<&RawValue> {
    <&RawValue>::deserialize(RawText(json)).ok()
}

/// The key serde_json's `RawValue` is deserialized under (`serde_json::raw::TOKEN`).
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

struct RawText<'de>(&'de str);

impl<'de> Deserializer<'de> for RawText<'de> {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_map(RawTextMap {
            json: self.0,
            key_given: false,
        })
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

struct RawTextMap<'de> {
    json: &'de str,
    key_given: bool,
}

impl<'de> MapAccess<'de> for RawTextMap<'de> {
    type Error = ValueError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, ValueError> {
        if self.key_given {
            return Ok(None);
        }
        self.key_given = true;
        seed.deserialize(BorrowedStrDeserializer::new(RAW_VALUE_TOKEN))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, ValueError> {
        seed.deserialize(BorrowedStrDeserializer::new(self.json))
    }
}

struct Scanner<'e> {
    text: &'e str,
    at: usize,
}

impl<'e> Scanner<'e> {
    fn bytes(&self) -> &'e [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    /// JSON's whitespace: space, tab, line feed, carriage return.
    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// Whitespace, then `byte`.
    fn expect(&mut self, byte: u8) -> Option<()> {
        self.skip_whitespace();
        if self.peek()? != byte {
            return None;
        }
        self.at += 1;
        Some(())
    }

    /// `"key"` then `:`, the key written without escapes.
    fn expect_key(&mut self, key: &str) -> Option<()> {
        self.expect(b'"')?;
        if self.plain_string()? != key {
            return None;
        }
        self.expect(b':')
    }

    /// A string without escapes (`at` just after its opening quote): its text.
    fn plain_string(&mut self) -> Option<&'e str> {
        let start = self.at;
        if self.string()? {
            return None;
        }
        // The span lies between two quotes, so on char boundaries.
        self.text.get(start..self.at - 1)
    }

    /// Moves past a string's closing quote (`at` just after its opening one): whether it had
    /// escapes. `None` for a control character, an escape JSON does not have, or no end.
    fn string(&mut self) -> Option<bool> {
        let (end, escaped) = string_end(self.bytes(), self.at)?;
        self.at = end;
        Some(escaped)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` (`at` on its first byte).
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => {
                self.at += 1;
                // Only one leading zero.
                if self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    return None;
                }
            }
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if !self.bytes().get(self.at..)?.starts_with(word) {
            return None;
        }
        self.at += word.len();
        Some(())
    }

    /// Steps over one value of any depth (`at` on its first byte), checking it as serde_json
    /// does when it skips a value. Iterative: deep nesting costs no stack, only a bit per level
    /// in `objects` (set for an object, clear for an array); past 64 levels it gives up.
    fn value(&mut self) -> Option<()> {
        let mut objects = 0u64;
        let mut depth = 0u32;
        loop {
            // A value's start.
            self.skip_whitespace();
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    self.string()?;
                }
                open @ (b'{' | b'[') => {
                    self.at += 1;
                    self.skip_whitespace();
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.at += 1;
                    } else {
                        if depth == 64 {
                            return None;
                        }
                        objects = (objects << 1) | u64::from(open == b'{');
                        depth += 1;
                        if open == b'{' {
                            self.key()?;
                        }
                        continue;
                    }
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return None,
            }
            // After a whole value: close what it ends, or go on after a comma.
            loop {
                if depth == 0 {
                    return Some(());
                }
                self.skip_whitespace();
                let in_object = objects & 1 == 1;
                match self.peek()? {
                    b',' => {
                        self.at += 1;
                        if in_object {
                            self.key()?;
                        }
                        break;
                    }
                    b'}' if in_object => {}
                    b']' if !in_object => {}
                    _ => return None,
                }
                self.at += 1;
                objects >>= 1;
                depth -= 1;
            }
        }
    }

    /// A member's name and its colon, the name skipped.
    fn key(&mut self) -> Option<()> {
        self.expect(b'"')?;
        self.string()?;
        self.expect(b':')
    }

    /// The members of an object that paths go through (`at` just after its `{`), up to and
    /// past its `}`, keeping what the trie's node `node` asks for.
    fn members(&mut self, trie: &PathTrie, node: usize, read: &mut Read<'e>) -> Option<()> {
        self.skip_whitespace();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        let children = &trie.nodes[node].children;
        loop {
            self.expect(b'"')?;
            let key = self.plain_string()?;
            self.expect(b':')?;
            self.skip_whitespace();
            match children.iter().find(|(k, _)| **k == *key) {
                // Most skipped members are strings: no need for the general step.
                None if self.peek() == Some(b'"') => {
                    self.at += 1;
                    self.string()?;
                }
                None => self.value()?,
                Some(&(_, child)) => {
                    let child_node = &trie.nodes[child as usize];
                    match child_node.slot {
                        Some(slot) => {
                            let start = self.at;
                            let plain = if self.peek() == Some(b'"') {
                                self.at += 1;
                                !self.string()?
                            } else {
                                self.value()?;
                                false
                            };
                            let value = raw_value(&self.text[start..self.at])?;
                            read.keep(slot, value, Some(key), plain);
                        }
                        None => {
                            // A repeated key: only its last occurrence counts.
                            read.forget(child_node.subtree.clone());
                            // Anything but an object here is left to serde.
                            self.expect(b'{')?;
                            self.members(trie, child as usize, read)?;
                        }
                    }
                }
            }
            self.skip_whitespace();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

/// Where a string ends, past its closing quote (`at` just after its opening one), and whether
/// it had escapes. `None` for a control character, an escape JSON does not have, or no end.
#[inline]
fn string_end(bytes: &[u8], mut at: usize) -> Option<(usize, bool)> {
    let mut escaped = false;
    loop {
        // Eight bytes at a time while none is a quote, a backslash or a control character.
        while let Some(chunk) = bytes.get(at..at + 8) {
            let mut eight = [0u8; 8];
            eight.copy_from_slice(chunk);
            let found = special_bytes(u64::from_le_bytes(eight));
            if found != 0 {
                at += (found.trailing_zeros() / 8) as usize;
                break;
            }
            at += 8;
        }
        match *bytes.get(at)? {
            b'"' => return Some((at + 1, escaped)),
            b'\\' => {
                escaped = true;
                at = escape_end(bytes, at)?;
            }
            0..=0x1f => return None,
            _ => at += 1,
        }
    }
}

/// Where an escape ends (`at` on its backslash). serde_json accepts any four hex digits after
/// `\u` in text it skips, unpaired surrogates included.
fn escape_end(bytes: &[u8], at: usize) -> Option<usize> {
    match *bytes.get(at + 1)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(at + 2),
        b'u' => {
            let digits = bytes.get(at + 2..at + 6)?;
            digits.iter().all(u8::is_ascii_hexdigit).then_some(at + 6)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::Mapping;
    use crate::read::read_wrapped_with_serde;
    use proptest::prelude::*;

    /// Metrics whose paths go through nested members, end at values of every kind, pass
    /// through array indices, and (`whole`) keep the event itself.
    fn mapping() -> Mapping {
        Mapping::from_toml(
            r#"
            [[metric]]
            name = "m"
            pattern = { source = ["s"], detail-type = ["t"] }
            tenant_id = "$.detail.tenant_id"
            metadata.a = { from = "$.detail.a.b", type = "text", required = false }
            metadata.r = { from = "$.resources[0]", type = "id", required = false }
            data.n = { from = "$.detail.n", type = "number", required = false }
            data.deep = { from = "$.detail.obj.list[1].b", type = "number", required = false }
            extra.obj = { from = "$.detail.obj", type = "object", required = false }

            [[metric]]
            name = "whole"
            pattern = { source = ["s"], detail-type = ["t"] }
            tenant_id = "$.detail.tenant_id"
            extra.event = { from = "aws.events.event.json", type = "object", required = false }
            "#,
        )
        .unwrap()
    }

    /// What a read kept, as text, for comparing two reads.
    fn kept(read: &Read<'_>) -> Vec<(Option<String>, Option<String>)> {
        read.slots
            .iter()
            .map(|kept| {
                // What the scanner says is a string without escapes is one.
                let text = kept.value.map(|v| v.get().to_owned());
                if kept.plain {
                    assert!(
                        text.as_ref()
                            .is_some_and(|t| t.starts_with('"') && !t.contains('\\'))
                    );
                }
                (text, kept.key.map(str::to_owned))
            })
            .collect()
    }

    /// The scanner either leaves the record to serde or reads what serde reads.
    fn agrees(mapping: &Mapping, text: &str) -> bool {
        let slow = read_wrapped_with_serde(mapping, text);
        let Some((metric, read)) = scan_wrapped(mapping, text) else {
            return false;
        };
        let slow = match slow {
            Ok(slow) => slow,
            Err(e) => panic!("the scanner read what serde refuses ({e:?}): {text}"),
        };
        assert_eq!(metric.name(), slow.metric.name(), "{text}");
        assert_eq!(kept(&read), kept(&slow.read), "{text}");
        true
    }

    #[test]
    fn usual_records_are_scanned_as_serde_reads_them() {
        let mapping = mapping();
        for text in [
            r#"{"metric":"m","event":{"id":"e","time":"2026-01-01T00:00:00Z","detail":{"tenant_id":"acme","a":{"b":"x \"q\" \\ y"},"n":5,"obj":{"list":[0,{"b":2}]}},"resources":["r0"]}}"#,
            " {\n\"metric\" : \"m\" ,\t\"event\":{ \"detail\" : { } } } \r\n",
            r#"{"metric":"m","event":{"detail":{"a":{"b":1},"a":{"b":"one"},"n":1e999},"detail":{"n":-0.5E+3,"x":[[],{},[{"y":null}]]}}}"#,
            r#"{"metric":"m","event":{"skipped":"\ud800 \u00e9 \/ \b\f\n\r\t 😀","detail":{"tenant_id":"\uD83D\uDE00"}}}"#,
            r#"{"metric":"whole","event":{"detail":{"tenant_id":"t"},"id":"x"}}"#,
        ] {
            assert!(agrees(&mapping, text), "left to serde: {text}");
        }
    }

    #[test]
    fn unusual_and_malformed_records_are_left_to_serde() {
        let mapping = mapping();
        for text in [
            r#"{"event":{},"metric":"m"}"#,
            r#"{"metric":"m\u0020","event":{}}"#,
            r#"{"metric":"unknown","event":{}}"#,
            r#"{"metric":"m","event":{},"x":1}"#,
            r#"{"metric":"m","event":{"det\u0061il":{}}}"#,
            r#"{"metric":"m","event":{"detail":"a string"}}"#,
            r#"{"metric":"m","event":[]}"#,
            r#"{"metric":"m","event":{"x":01}}"#,
            r#"{"metric":"m","event":{"x":1.}}"#,
            r#"{"metric":"m","event":{"x":-}}"#,
            r#"{"metric":"m","event":{"x":[1,]}}"#,
            r#"{"metric":"m","event":{"x":{"a":1,}}}"#,
            r#"{"metric":"m","event":{"x":"\x"}}"#,
            r#"{"metric":"m","event":{"x":"\u12"}}"#,
            "{\"metric\":\"m\",\"event\":{\"x\":\"a\u{1}b\"}}",
            r#"{"metric":"m","event":{"x":tru}}"#,
            r#"{"metric":"m","event":{}} x"#,
            r#"{"metric":"m","event":{"x":"#,
            r#"{"metric":"whole","event":{"x":1}"#,
        ] {
            assert!(!agrees(&mapping, text), "scanned: {text}");
        }
        let deep = format!(
            r#"{{"metric":"m","event":{{"x":{}{}}}}}"#,
            "[".repeat(70),
            "]".repeat(70)
        );
        assert!(!agrees(&mapping, &deep));
    }

    #[test]
    fn raw_values_are_handed_over_without_serde_parsing() {
        assert_eq!(
            raw_value(r#"{"a": [1]}"#).map(RawValue::get),
            Some(r#"{"a": [1]}"#)
        );
    }

    /// JSON text with the shapes that matter to a reader: escapes of every kind (unpaired
    /// surrogates too), characters outside the BMP, numbers of every form, whitespace, nested
    /// objects and arrays whose keys are the paths' keys, repeated or escaped.
    fn json_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[a-z ]{0,12}",
            any::<char>()
                .prop_filter("no quote, backslash or control", |c| !matches!(c, '"' | '\\')
                    && !c.is_control())
                .prop_map(String::from),
            prop::sample::select(vec![
                r#"\""#,
                r"\\",
                r"\/",
                r"\b",
                r"\f",
                r"\n",
                r"\r",
                r"\t",
                r"\u00e9",
                r"\uD83D\uDE00",
                r"\ud800",
                r"\u0041",
                "😀",
                "é",
            ])
            .prop_map(str::to_owned),
        ];
        let string = prop::collection::vec(piece, 0..4).prop_map(|p| format!("\"{}\"", p.concat()));
        let number = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_map(|f| format!("{f:?}"))
                .prop_filter("finite", |f| !f.contains(['N', 'i'])),
            prop::sample::select(vec!["0", "-0", "1e999", "-2.5E-3", "0.5e+7", "12"]).prop_map(str::to_owned),
        ];
        let leaf = prop_oneof![
            prop::sample::select(vec!["null", "true", "false"]).prop_map(str::to_owned),
            number,
            string,
        ];
        let key = prop::sample::select(vec![
            "detail",
            "tenant_id",
            "a",
            "b",
            "n",
            "obj",
            "list",
            "id",
            "time",
            "resources",
            "x",
            "de\\u0074ail",
            "é😀",
        ]);
        let space = prop::sample::select(vec!["", "", "", " ", "\n\t "]);
        leaf.prop_recursive(4, 32, 5, move |inner| {
            prop_oneof![
                prop::collection::vec((space.clone(), inner.clone()), 0..4).prop_map(|items| {
                    let items: Vec<String> = items.into_iter().map(|(s, v)| format!("{s}{v}{s}")).collect();
                    format!("[{}]", items.join(","))
                }),
                prop::collection::vec((space.clone(), key.clone(), inner), 0..5).prop_map(|members| {
                    let members: Vec<String> = members
                        .into_iter()
                        .map(|(s, k, v)| format!("{s}\"{k}\"{s}:{s}{v}"))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }

    /// Members of an object that paths go through, each followed by a comma: names without
    /// escapes, none of them a path's way further down.
    fn members() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec![
            "tenant_id",
            "b",
            "n",
            "obj",
            "id",
            "time",
            "resources",
            "x",
            "é😀",
        ]);
        prop::collection::vec((key, json_text()), 0..6).prop_map(|members| {
            members
                .into_iter()
                .map(|(k, v)| format!("\"{k}\":{v},"))
                .collect()
        })
    }

    /// A wrapper around an event, most often the usual one.
    fn wrapped_text() -> impl Strategy<Value = String> {
        let metric = prop::sample::select(vec!["m", "m", "m", "whole", "unknown", r"m\u0020"]);
        (metric, json_text(), 0..6u8).prop_map(|(metric, event, form)| match form {
            0 => format!(r#"{{"event":{event},"metric":"{metric}"}}"#),
            1 => format!(r#" {{ "metric" : "{metric}" , "event" : {event} }} "#),
            2 => format!(r#"{{"metric":"{metric}","event":{event},"event":{{}}}}"#),
            _ => format!(r#"{{"metric":"{metric}","event":{event}}}"#),
        })
    }

    /// A change that likely breaks the text: a byte replaced or inserted, or the text cut.
    fn damaged(text: &str, at: usize, byte: u8, how: u8) -> String {
        let mut bytes = text.as_bytes().to_vec();
        let at = at % (bytes.len() + 1);
        match how {
            0 => bytes.truncate(at),
            1 => bytes.insert(at, byte),
            _ if at < bytes.len() => bytes[at] = byte,
            _ => {}
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn the_scanner_reads_what_serde_reads_or_leaves_it(text in wrapped_text()) {
            agrees(&mapping(), &text);
        }

        #[test]
        fn damaged_records_are_never_read_differently(
            text in wrapped_text(),
            at in any::<usize>(),
            byte in prop::sample::select(b"\"\\{}[],:0-.eE \x01tnfu9a".to_vec()),
            how in 0..3u8,
        ) {
            agrees(&mapping(), &damaged(&text, at, byte, how));
        }

        #[test]
        fn usual_events_are_scanned(
            top in members(),
            detail in members(),
            a in members(),
            space in prop::sample::select(vec!["", " ", "\n"]),
        ) {
            let a = a.strip_suffix(',').unwrap_or_default();
            let text = format!(
                r#"{{"metric":"m","event":{{{top}{space}"detail"{space}:{space}{{{detail}"a":{{{a}}}}}}}}}"#
            );
            prop_assert!(agrees(&mapping(), &text), "{}", text);
        }
    }
}
