//! Zero-copy JSON helpers shared by every stage: reading an object as ordered
//! `(key, raw value)` pairs (duplicates kept, so they can be rejected), and writing compact
//! JSON fast (strings escaped only when they need it, raw values minified onto one line).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A string that borrows from the input when it has no escapes.
#[derive(Debug, Deserialize)]
pub struct CowStr<'a>(#[serde(borrow)] pub Cow<'a, str>);

/// A JSON object as its entries in input order, values left unparsed.
#[derive(Debug, Default)]
pub struct RawObject<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;

        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = RawObject<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(CowStr(key)) = map.next_key()? {
                    let value: &'de RawValue = map.next_value()?;
                    entries.push((key, value));
                }
                Ok(RawObject(entries))
            }
        }

        deserializer.deserialize_map(EntriesVisitor)
    }
}

/// A value that should be an object: its entries, values read as `V`, when it is one, without
/// parsing it twice.
#[derive(Debug)]
pub enum MaybeObject<'a, V = &'a RawValue> {
    Object(Vec<(Cow<'a, str>, V)>),
    /// Any other JSON value (its contents are skipped, not kept).
    NotObject,
}

impl<'a, V> MaybeObject<'a, V> {
    /// The first key that appears twice, if any, and the keys' [`scan_names`] bits.
    pub fn scan_keys<'e>(entries: &'e [(Cow<'a, str>, V)]) -> (Option<&'e str>, u64) {
        scan_names(entries.iter().map(|(k, _)| k.as_ref()))
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for MaybeObject<'de, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MaybeObjectVisitor<V>(std::marker::PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for MaybeObjectVisitor<V> {
            type Value = MaybeObject<'de, V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(16);
                while let Some(CowStr(key)) = map.next_key()? {
                    let value: V = map.next_value()?;
                    entries.push((key, value));
                }
                Ok(MaybeObject::Object(entries))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(MaybeObject::NotObject)
            }

            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(MaybeObject::NotObject)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(MaybeObject::NotObject)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(MaybeObject::NotObject)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(MaybeObject::NotObject)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(MaybeObject::NotObject)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(MaybeObject::NotObject)
            }
        }

        deserializer.deserialize_any(MaybeObjectVisitor(std::marker::PhantomData))
    }
}

/// A value that should be a string: read in the same pass as the object holding it, and
/// borrowed when it has no escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaybeStr<'a> {
    Str(Cow<'a, str>),
    /// Any other JSON value (its contents are skipped, not kept).
    NotStr,
}

impl<'de> Deserialize<'de> for MaybeStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MaybeStrVisitor;

        impl<'de> Visitor<'de> for MaybeStrVisitor {
            type Value = MaybeStr<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(MaybeStr::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(MaybeStr::Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(MaybeStr::Str(Cow::Owned(s)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(MaybeStr::NotStr)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(MaybeStr::NotStr)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(MaybeStr::NotStr)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(MaybeStr::NotStr)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(MaybeStr::NotStr)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(MaybeStr::NotStr)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(MaybeStr::NotStr)
            }
        }

        deserializer.deserialize_any(MaybeStrVisitor)
    }
}

/// A top-level event object in one pass: `metadata` and `data` are read as objects as they
/// are met, every other value is left raw.
///
/// `metadata`'s values are read as `M`: strings by default. (Reading a value as a string
/// parses numbers, and a number too large for a double fails that parse; `&RawValue` reads
/// any value, for that case.)
#[derive(Debug)]
pub struct TopLevel<'a, M = MaybeStr<'a>> {
    pub entries: Vec<(Cow<'a, str>, &'a RawValue)>,
    pub metadata: Option<MaybeObject<'a, M>>,
    pub data: Option<MaybeObject<'a>>,
    /// `metadata` or `data` when it appeared twice.
    pub repeated: Option<&'static str>,
}

impl<'a> TopLevel<'a, &'a RawValue> {
    /// The same event with `metadata`'s string values decoded.
    pub fn with_string_values(self) -> TopLevel<'a> {
        let metadata = self.metadata.map(|metadata| match metadata {
            MaybeObject::Object(entries) => MaybeObject::Object(
                entries
                    .into_iter()
                    .map(|(k, raw)| (k, raw_str(raw).map_or(MaybeStr::NotStr, MaybeStr::Str)))
                    .collect(),
            ),
            MaybeObject::NotObject => MaybeObject::NotObject,
        });
        TopLevel {
            entries: self.entries,
            metadata,
            data: self.data,
            repeated: self.repeated,
        }
    }
}

impl<'de, M: Deserialize<'de>> Deserialize<'de> for TopLevel<'de, M> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TopVisitor<M>(std::marker::PhantomData<M>);

        impl<'de, M: Deserialize<'de>> Visitor<'de> for TopVisitor<M> {
            type Value = TopLevel<'de, M>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut top = TopLevel {
                    entries: Vec::with_capacity(4),
                    metadata: None,
                    data: None,
                    repeated: None,
                };
                while let Some(CowStr(key)) = map.next_key()? {
                    match key.as_ref() {
                        "metadata" => {
                            if top.metadata.replace(map.next_value()?).is_some() {
                                top.repeated = Some("metadata");
                            }
                        }
                        "data" => {
                            if top.data.replace(map.next_value()?).is_some() {
                                top.repeated = Some("data");
                            }
                        }
                        _ => {
                            let value: &'de RawValue = map.next_value()?;
                            top.entries.push((key, value));
                        }
                    }
                }
                Ok(top)
            }
        }

        deserializer.deserialize_map(TopVisitor(std::marker::PhantomData))
    }
}

/// A JSON string's value from its raw text, without a second parse when it has no escapes
/// (a JSON string without `\` holds its characters literally). `None` if it is not a string.
pub fn raw_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    raw_json_str(raw.get())
}

/// [`raw_str`] on text known to be one JSON value.
pub(crate) fn raw_json_str(text: &str) -> Option<Cow<'_, str>> {
    if text.len() < 2 || !text.starts_with('"') {
        return None;
    }
    let inner = &text[1..text.len() - 1];
    if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
        return Some(Cow::Borrowed(inner));
    }
    if let Some(decoded) = unescape_short_escapes(inner) {
        return Some(Cow::Owned(decoded));
    }
    serde_json::from_str::<CowStr<'_>>(text).ok().map(|CowStr(s)| s)
}

/// A string's text decoded when its escapes are all two-character ones (`\"`, `\\`, `\/`,
/// `\b`, `\f`, `\n`, `\r`, `\t`: free text usually has only these), in one pass and one
/// allocation, where serde_json's reader would set up a parser and a scratch buffer per
/// string. `None` for anything else (a `\u` escape, or text that is not one JSON string),
/// which is left to serde_json.
fn unescape_short_escapes(inner: &str) -> Option<String> {
    let bytes = inner.as_bytes();
    let mut out = String::with_capacity(inner.len());
    let (mut i, mut start) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                // Every boundary here follows an ASCII byte, so slicing never splits a character.
                out.push_str(&inner[start..i]);
                out.push(match bytes.get(i + 1)? {
                    b'"' => '"',
                    b'\\' => '\\',
                    b'/' => '/',
                    b'b' => '\u{8}',
                    b'f' => '\u{c}',
                    b'n' => '\n',
                    b'r' => '\r',
                    b't' => '\t',
                    _ => return None,
                });
                i += 2;
                start = i;
            }
            // An unescaped quote ends the string early; a raw control character is not JSON.
            b'"' | 0..=0x1f => return None,
            _ => i += 1,
        }
    }
    out.push_str(&inner[start..]);
    Some(out)
}

impl<'a> RawObject<'a> {
    /// The first entry named `key`.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The first key that appears twice, if any.
    pub fn duplicate_key(&self) -> Option<&str> {
        first_duplicate(self.0.iter().map(|(k, _)| k.as_ref()))
    }
}

/// One bit out of 64 chosen from a name's length and its first, middle and last bytes. Two
/// names with different bits are different, so checking a handful of names for repeats or
/// clashes compares only the rare pairs whose bits collide.
pub fn name_bit(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let key = match bytes {
        [] => 0,
        [first, ..] => {
            let middle = bytes[bytes.len() / 2];
            let last = bytes[bytes.len() - 1];
            (bytes.len() as u64)
                | (u64::from(*first) << 16)
                | (u64::from(middle) << 24)
                | (u64::from(last) << 32)
        }
    };
    1 << (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58)
}

/// The first name that appears a second time. Small maps (what events usually carry) are
/// checked with [`name_bit`] and no allocation; larger ones are hashed, so the worst case stays
/// linear.
pub fn first_duplicate<'s>(names: impl Iterator<Item = &'s str> + Clone) -> Option<&'s str> {
    scan_names(names).0
}

/// [`first_duplicate`], and the union of the names' [`name_bit`]s: every bit set when there
/// are too many names for the bits to tell them apart.
pub fn scan_names<'s>(names: impl Iterator<Item = &'s str> + Clone) -> (Option<&'s str>, u64) {
    let mut seen = 0u64;
    for (i, name) in names.clone().enumerate() {
        if i == 32 {
            let mut set = std::collections::HashSet::with_capacity(64);
            return (names.into_iter().find(|n| !set.insert(*n)), u64::MAX);
        }
        let bit = name_bit(name);
        if seen & bit != 0 && names.clone().take(i).any(|earlier| earlier == name) {
            return (Some(name), seen);
        }
        seen |= bit;
    }
    (None, seen)
}

/// A JSON number's text, read for its type: an integer has no fraction and no exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberText {
    /// The integer's value, or `None` when it does not fit an `i64`.
    Integer(Option<i64>),
    /// A fraction or an exponent (or text that is not a number at all).
    Other,
}

/// Reads a JSON number's text (as the parser accepted it) in one pass. Up to 18 digits cannot
/// overflow an `i64`, so they are summed without checks; longer integers go to the standard
/// parser.
pub(crate) fn number_text(text: &str) -> NumberText {
    let digits = text.strip_prefix('-').unwrap_or(text).as_bytes();
    if digits.is_empty() {
        return NumberText::Other;
    }
    if digits.len() > 18 {
        return if digits.iter().all(u8::is_ascii_digit) {
            NumberText::Integer(text.parse().ok())
        } else {
            NumberText::Other
        };
    }
    let mut value: i64 = 0;
    for &b in digits {
        // In a JSON number, anything but a digit after the sign starts a fraction or exponent.
        if !b.is_ascii_digit() {
            return NumberText::Other;
        }
        value = value * 10 + i64::from(b - b'0');
    }
    NumberText::Integer(Some(if text.starts_with('-') { -value } else { value }))
}

/// The decimal digits of `n`, written into the end of `buf` without allocating.
pub fn decimal_digits(n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    let mut rest = n;
    loop {
        at -= 1;
        buf[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    &buf[at..]
}

/// Appends `s` as a JSON string literal.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    if !needs_escape(bytes) {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    // Writing into a Vec cannot fail, and a &str is always serialisable.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Whether `bytes` holds a quote, a backslash or a control character. No early exit, so the
/// scan compiles to wide compares (most strings need no escaping); a short string, as most
/// names and values are, is checked eight bytes at a time instead, below the width where the
/// wide compares start.
fn needs_escape(bytes: &[u8]) -> bool {
    if bytes.len() >= 32 {
        return bytes
            .iter()
            .fold(false, |acc, &b| acc | (b == b'"') | (b == b'\\') | (b < 0x20));
    }
    let mut words = bytes.chunks_exact(8);
    let mut found = 0;
    for word in &mut words {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(word);
        found |= special_bytes(u64::from_le_bytes(eight));
    }
    found != 0
        || words
            .remainder()
            .iter()
            .any(|&b| b == b'"' || b == b'\\' || b < 0x20)
}

/// The high bit of each byte of `word` (eight bytes of JSON text, little-endian) that is a
/// quote, a backslash or below 0x20, and maybe of bytes after the first such one: the lowest
/// set bit marks the first. What a JSON string ends at or must escape.
pub fn special_bytes(word: u64) -> u64 {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = word ^ (ONES * u64::from(b'"'));
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (control | quote | backslash) & HIGH
}

/// Appends a raw JSON value with the whitespace outside strings removed, so the result is
/// always on one line (JSON strings cannot hold a raw newline). Strings are stepped over with
/// a vectorised search for their closing quote and copied in runs with what surrounds them:
/// a byte-by-byte copy was a visible part of a local run, which writes every event this way.
pub fn write_raw(out: &mut Vec<u8>, raw: &RawValue) {
    let json = raw.get().as_bytes();
    if !matches!(json.first(), Some(b'{' | b'[')) {
        // serde_json trims scalars, and scalars hold no whitespace outside strings.
        out.extend_from_slice(json);
        return;
    }
    out.reserve(json.len());
    // `json[run..i]` is the text still to copy.
    let mut run = 0;
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => i = string_end(json, i + 1),
            b' ' | b'\n' | b'\r' | b'\t' => {
                out.extend_from_slice(&json[run..i]);
                i += 1;
                run = i;
            }
            _ => i += 1,
        }
    }
    out.extend_from_slice(&json[run..]);
}

/// The index just past the quote that closes the string whose text starts at `from` (the end
/// of `json` if it is not closed).
fn string_end(json: &[u8], mut from: usize) -> usize {
    while let Some(k) = json
        .get(from..)
        .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
    {
        if json[from + k] == b'"' {
            return from + k + 1;
        }
        from += k + 2; // an escape: the byte after the backslash is never the closing quote
    }
    json.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_exactly_when_they_need_it() {
        let long = "x".repeat(40);
        for text in [
            "",
            "plain",
            "eight by",
            "nine byte",
            "a\"b",
            "tab\tin",
            "\\",
            "é😀",
            &long,
        ] {
            let mut written = Vec::new();
            write_str(&mut written, text);
            assert_eq!(written, serde_json::to_vec(text).unwrap(), "{text:?}");
        }
        for at in 0..40 {
            for special in ['"', '\\', '\u{1}', '\u{1f}'] {
                let mut text = "y".repeat(40);
                text.insert(at, special);
                let text = &text[..(at + 1 + at % 3).min(text.len())];
                let mut written = Vec::new();
                write_str(&mut written, text);
                assert_eq!(written, serde_json::to_vec(text).unwrap(), "{text:?}");
            }
        }
    }

    #[test]
    fn raw_objects_keep_order_and_duplicates() {
        let obj: RawObject = serde_json::from_str(r#"{"b":1,"a":{"x": [1, 2]},"b":"two"}"#).unwrap();
        let keys: Vec<&str> = obj.0.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["b", "a", "b"]);
        assert_eq!(obj.duplicate_key(), Some("b"));
        assert_eq!(obj.get("b").unwrap().get(), "1");
    }

    #[test]
    fn keys_without_escapes_are_borrowed() {
        let obj: RawObject = serde_json::from_str(r#"{"plain":1,"esc\"aped":2}"#).unwrap();
        assert!(matches!(obj.0[0].0, Cow::Borrowed(_)));
        assert_eq!(obj.0[1].0, "esc\"aped");
    }

    #[test]
    fn duplicates_are_found_in_large_maps_too() {
        let many: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
        let mut names: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(first_duplicate(names.iter().copied()), None);
        names.push("k7");
        assert_eq!(first_duplicate(names.iter().copied()), Some("k7"));
    }

    #[test]
    fn number_texts_are_read_like_the_standard_parser_does() {
        for text in [
            "0",
            "-0",
            "7",
            "-7",
            "123456789012345678",
            "-123456789012345678",
            "9223372036854775807",
            "-9223372036854775808",
            "1795430850056",
        ] {
            assert_eq!(
                number_text(text),
                NumberText::Integer(Some(text.parse().unwrap())),
                "{text}"
            );
        }
        for text in [
            "9223372036854775808",
            "-9223372036854775809",
            "123456789012345678901234",
        ] {
            assert_eq!(number_text(text), NumberText::Integer(None), "{text}");
        }
        for text in ["1.5", "-0.25", "1e3", "1E-3", "12345678901234567890.5", "-", ""] {
            assert_eq!(number_text(text), NumberText::Other, "{text}");
        }
    }

    #[test]
    fn strings_decode_as_serde_json_decodes_them() {
        for text in [
            r#""plain""#,
            r#""q\"b\\n\/\b\f\n\r\t end""#,
            r#""é \" ü""#,
            r#""\u0041\n""#,
            r#""\ud83d\ude00""#,
            r#""bad \q""#,
            r#""trailing\""#,
            "\"raw\ttab\\n\"",
            r#""early"end\n""#,
            r#""""#,
        ] {
            let ours = raw_json_str(text).map(Cow::into_owned);
            let theirs = serde_json::from_str::<String>(text).ok();
            assert_eq!(ours, theirs, "{text}");
        }
    }

    #[test]
    fn strings_are_escaped_only_when_needed() {
        let mut out = Vec::new();
        write_str(&mut out, "plain");
        write_str(&mut out, "q\"b\\n\n");
        assert_eq!(String::from_utf8(out).unwrap(), r#""plain""q\"b\\n\n""#);
    }

    #[test]
    fn raw_values_are_minified_onto_one_line() {
        let raw: Box<RawValue> =
            serde_json::from_str("{ \"a\" : [1,\n 2],\t\"s\": \"keep  spaces \\\" here\" }").unwrap();
        let mut out = Vec::new();
        write_raw(&mut out, &raw);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":[1,2],"s":"keep  spaces \" here"}"#
        );
    }
}
