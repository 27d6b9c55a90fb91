//! From stored bytes to JSON text: size caps, gzip (by name or magic bytes, with a bomb
//! guard), UTF-8 (a byte order mark is left for [`crate::chunk::parse`] to strip). The checks that must happen before a single byte is parsed.

use std::borrow::Cow;
use std::io::Read;

use flate2::read::GzDecoder;

use crate::reject::Reject;

/// Size limits applied before any parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest stored object accepted (compressed size for gzip bodies).
    pub max_chunk_bytes: u64,
    /// The largest body a gzip object may expand to: the guard against gzip bombs.
    pub max_decompressed_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_chunk_bytes: 64 * 1024 * 1024,
            max_decompressed_bytes: 256 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// Refuses an object by its stored size, before it is downloaded.
    pub fn check_size(&self, size: u64) -> Result<(), Reject> {
        if size > self.max_chunk_bytes {
            return Err(Reject::TooLarge {
                size,
                limit: self.max_chunk_bytes,
            });
        }
        Ok(())
    }
}

/// Turns stored bytes into JSON text: size cap, gzip (by name or by magic bytes, capped),
/// UTF-8 check. Borrows when no decompression is needed.
pub fn decode<'a>(
    raw: &'a [u8],
    gzip_by_name: bool,
    limits: &Limits,
) -> Result<Cow<'a, str>, Reject> {
    limits.check_size(raw.len() as u64)?;
    let bytes: Cow<'a, [u8]> = if gzip_by_name || raw.starts_with(&[0x1f, 0x8b]) {
        let cap = limits.max_decompressed_bytes;
        let mut out = Vec::new();
        GzDecoder::new(raw)
            .take(cap + 1)
            .read_to_end(&mut out)
            .map_err(|e| Reject::BadGzip {
                reason: e.to_string(),
            })?;
        if out.len() as u64 > cap {
            return Err(Reject::GzipTooLarge { limit: cap });
        }
        Cow::Owned(out)
    } else {
        Cow::Borrowed(raw)
    };
    if bytes.is_empty() {
        return Err(Reject::Empty);
    }
    match bytes {
        Cow::Borrowed(b) => std::str::from_utf8(b).map(Cow::Borrowed),
        Cow::Owned(v) => String::from_utf8(v)
            .map(Cow::Owned)
            .map_err(|e| e.utf8_error()),
    }
    .map_err(|e| Reject::NotUtf8 {
        offset: e.valid_up_to(),
    })
}
#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn decode_checks_size_gzip_utf8_and_bom() {
        let limits = Limits {
            max_chunk_bytes: 100,
            max_decompressed_bytes: 1_000,
        };
        assert_eq!(decode(b"{}", false, &limits).unwrap(), "{}");
        assert!(matches!(
            decode(&[b' '; 101], false, &limits),
            Err(Reject::TooLarge { size: 101, .. })
        ));
        assert_eq!(decode(b"", false, &limits), Err(Reject::Empty));
        // A byte order mark is valid UTF-8: parse strips it (and says so).
        assert_eq!(
            decode(b"\xEF\xBB\xBF{}", false, &limits).unwrap(),
            "\u{feff}{}"
        );
        assert_eq!(
            decode(b"{\"a\":\"\xff\"}", false, &limits),
            Err(Reject::NotUtf8 { offset: 6 })
        );

        let gz = |body: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(body).unwrap();
            e.finish().unwrap()
        };
        // By magic bytes, whatever the name says.
        assert_eq!(
            decode(&gz(b"{\"k\":1}"), false, &limits).unwrap(),
            "{\"k\":1}"
        );
        // A bomb: 50 bytes that expand past the cap.
        let bomb = gz(&vec![b' '; 5_000]);
        assert!(bomb.len() <= 100);
        assert_eq!(
            decode(&bomb, true, &limits),
            Err(Reject::GzipTooLarge { limit: 1_000 })
        );
        assert!(matches!(
            decode(b"not gzip at all", true, &limits),
            Err(Reject::BadGzip { .. })
        ));
    }
}
