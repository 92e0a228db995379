//! Writing JSON that mostly repeats the text it was parsed from.
//!
//! An enriched event is usually its input plus a few fields. Writing it piece by piece costs a
//! copy call per key, value and separator; [`Echo`] instead notes where each piece lies in the
//! source and, while the output follows the source byte for byte, only moves the end of a
//! pending run. A run is copied in one go when the output departs from the source, and at the
//! end. What is written is the same either way.

use std::ops::Range;

/// Output that copies runs of `source` in one piece.
pub(crate) struct Echo<'s, 'o> {
    source: &'s [u8],
    out: &'o mut Vec<u8>,
    /// Source bytes that are the output's next bytes, not yet copied.
    run: Range<usize>,
}

impl<'s, 'o> Echo<'s, 'o> {
    pub(crate) fn new(source: &'s str, out: &'o mut Vec<u8>) -> Self {
        Echo {
            source: source.as_bytes(),
            out,
            run: 0..0,
        }
    }

    /// Writes `bytes`, which need not come from the source.
    #[inline]
    pub(crate) fn literal(&mut self, bytes: &[u8]) {
        let next = self.run.end;
        if self.source.get(next..next + bytes.len()) == Some(bytes) {
            self.run.end += bytes.len();
        } else {
            self.flush();
            self.out.extend_from_slice(bytes);
        }
    }

    /// Writes `text` when it lies within the source, and returns whether it did: the caller
    /// writes anything else itself (through [`Echo::out`]).
    #[inline]
    pub(crate) fn source_text(&mut self, text: &[u8]) -> bool {
        let Some(at) = self.offset_of(text) else {
            return false;
        };
        self.extend(at..at + text.len());
        true
    }

    /// Writes `text` with the quotes around it when it is a string's text in the source (a
    /// string the parser borrowed: it holds no escapes), and returns whether it did.
    #[inline]
    pub(crate) fn quoted(&mut self, text: &[u8]) -> bool {
        let Some(at) = self.offset_of(text) else {
            return false;
        };
        let end = at + text.len();
        let quoted = at > 0 && self.source[at - 1] == b'"' && self.source.get(end) == Some(&b'"');
        if quoted {
            self.extend(at - 1..end + 1);
        }
        quoted
    }

    /// The output, for text that is not in the source: pending source bytes are copied first.
    pub(crate) fn out(&mut self) -> &mut Vec<u8> {
        self.flush();
        self.out
    }

    /// Adds `span` of the source to the output: to the pending run when it continues it.
    #[inline]
    fn extend(&mut self, span: Range<usize>) {
        if span.start != self.run.end {
            self.flush();
            self.run.start = span.start;
        }
        self.run.end = span.end;
    }

    /// Copies what is pending. The output is complete once the `Echo` is finished or dropped.
    fn flush(&mut self) {
        if !self.run.is_empty() {
            self.out.extend_from_slice(&self.source[self.run.clone()]);
        }
        self.run = self.run.end..self.run.end;
    }

    /// Where `text` starts in the source, if it lies wholly within it.
    fn offset_of(&self, text: &[u8]) -> Option<usize> {
        let source = self.source.as_ptr_range();
        let span = text.as_ptr_range();
        (source.start <= span.start && span.end <= source.end)
            .then(|| span.start as usize - source.start as usize)
    }
}

impl Drop for Echo<'_, '_> {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_that_follows_the_source_is_copied_in_one_run() {
        let source = r#"{"a":"x","b":1}"#;
        let mut out = Vec::new();
        {
            let mut echo = Echo::new(source, &mut out);
            echo.literal(b"{\"");
            assert!(echo.source_text(&source.as_bytes()[2..3]));
            echo.literal(b"\":\"");
            assert!(echo.source_text(&source.as_bytes()[6..7]));
            echo.literal(b"\",\"b\":1}");
            // Nothing is copied until the run ends.
            assert!(echo.out.is_empty());
        }
        assert_eq!(out, source.as_bytes());
    }

    #[test]
    fn departures_from_the_source_are_written_in_order() {
        let source = r#"{"a":"x","b":1}"#;
        let mut out = Vec::new();
        {
            let mut echo = Echo::new(source, &mut out);
            echo.literal(b"{");
            // A later slice of the source, then an earlier one, then foreign text.
            assert!(echo.source_text(&source.as_bytes()[9..14]));
            echo.literal(b",");
            assert!(echo.source_text(&source.as_bytes()[1..8]));
            let foreign = String::from("\"z\":2");
            assert!(!echo.source_text(foreign.as_bytes()));
            echo.out().extend_from_slice(foreign.as_bytes());
            echo.literal(b"}");
        }
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"b":1,"a":"x""z":2}"#);
    }

    #[test]
    fn a_literal_past_the_end_of_the_source_is_written() {
        let source = r#"{"a":1}"#;
        let mut out = Vec::new();
        {
            let mut echo = Echo::new(source, &mut out);
            assert!(echo.source_text(source.as_bytes()));
            echo.literal(b"\n");
        }
        assert_eq!(out, b"{\"a\":1}\n");
    }
}
