//! GZIP members from one reusable compressor. Setting up a deflate stream allocates and clears
//! some 300 KiB of window and hash tables, more than compressing an object of a few events
//! costs; [`Gzip`] resets one stream instead. Its output is byte for byte what
//! `flate2::write::GzEncoder` writes at the same level (a test holds it to that): a header
//! without name or time, the raw deflate stream, then the CRC-32 and length of the input.

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// A reusable GZIP compressor at one level.
#[derive(Debug)]
pub struct Gzip {
    level: Compression,
    deflate: Compress,
    /// What one call to the stream writes (GzEncoder's buffer size).
    buffer: Vec<u8>,
}

const BUFFER: usize = 32 * 1024;

impl Gzip {
    pub fn new(level: Compression) -> Gzip {
        Gzip {
            level,
            deflate: Compress::new(level, false),
            buffer: Vec::with_capacity(BUFFER),
        }
    }

    pub fn level(&self) -> Compression {
        self.level
    }

    /// `data` as one GZIP member, appended to `out`.
    pub fn compress_into(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let begin = out.len();
        self.deflate.reset();
        out.extend_from_slice(&self.header());
        // All the input without a flush, then the end of the stream, through a 32 KiB buffer,
        // as GzEncoder does: the stream's blocks depend on both, so the bytes come out the same.
        let start = self.deflate.total_in();
        let mut flush = FlushCompress::None;
        loop {
            let read = (self.deflate.total_in() - start) as usize;
            let input = data.get(read..).unwrap_or_default();
            if input.is_empty() {
                flush = FlushCompress::Finish;
            }
            self.buffer.clear();
            let status = self.deflate.compress_vec(input, &mut self.buffer, flush);
            out.extend_from_slice(&self.buffer);
            match status {
                Ok(Status::StreamEnd) => break,
                Ok(Status::Ok | Status::BufError) => {}
                // Compressing into a buffer with room fails only on a corrupted stream, which a
                // reset one is not; should it happen, the encoder makes this member instead.
                Err(_) => {
                    out.truncate(begin);
                    let mut encoder = flate2::write::GzEncoder::new(out, self.level);
                    // Writing into a Vec cannot fail.
                    let _ = std::io::Write::write_all(&mut encoder, data);
                    let _ = encoder.finish();
                    self.deflate = Compress::new(self.level, false);
                    return;
                }
            }
        }
        let mut crc = Crc::new();
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&crc.amount().to_le_bytes());
    }

    /// `data` as one GZIP member.
    pub fn compress(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() / 4 + 64);
        self.compress_into(data, &mut out);
        out
    }

    /// The header `GzEncoder` writes: no flags, no time, the extra flags for the level, and
    /// "unknown" as the operating system.
    fn header(&self) -> [u8; 10] {
        let extra_flags = if self.level.level() >= Compression::best().level() {
            2
        } else if self.level.level() <= Compression::fast().level() {
            4
        } else {
            0
        };
        [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, extra_flags, 255]
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use flate2::read::GzDecoder;
    use flate2::write::GzEncoder;
    use proptest::prelude::*;

    use super::*;

    fn encoder_output(level: Compression, data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), level);
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    /// Text that compresses like events do, with runs and repeats.
    fn events_like(n: usize, seed: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut x = seed | 1;
        while out.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            write!(
                out,
                r#"{{"metric_name":"m{}","n":{},"t":"tenant-{}"}}"#,
                x % 7,
                x % 1000,
                x % 5
            )
            .unwrap();
            out.push(b'\n');
        }
        out.truncate(n);
        out
    }

    #[test]
    fn members_equal_gz_encoders_and_the_compressor_is_reusable() {
        for level in [
            Compression::fast(),
            Compression::default(),
            Compression::new(6),
            Compression::best(),
        ] {
            let mut gzip = Gzip::new(level);
            // Empty, tiny, larger than the window, and larger than one output reservation.
            for (n, seed) in [(0, 1), (1, 2), (300, 3), (70_000, 4), (1_500_000, 5), (300, 3)] {
                let data = events_like(n, seed);
                let member = gzip.compress(&data);
                assert_eq!(member, encoder_output(level, &data), "level {level:?}, {n} bytes");
                let mut back = Vec::new();
                GzDecoder::new(&member[..]).read_to_end(&mut back).unwrap();
                assert_eq!(back, data);
            }
        }
    }

    proptest! {
        #[test]
        fn any_bytes_give_the_encoders_member(data in proptest::collection::vec(any::<u8>(), 0..5000), level in 0u32..=9) {
            let mut gzip = Gzip::new(Compression::new(level));
            gzip.compress(b"something before, to reuse the stream");
            let mut out = b"kept".to_vec();
            gzip.compress_into(&data, &mut out);
            prop_assert_eq!(&out[..4], b"kept");
            prop_assert_eq!(&out[4..], &encoder_output(Compression::new(level), &data)[..]);
        }
    }
}
