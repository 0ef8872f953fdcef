//! File identity: (device, inode) plus a fingerprint of the first bytes, so a file is
//! recognised after a rename and a reused inode is not mistaken for the old file.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use xxhash_rust::xxh3::xxh3_64;

/// Bytes at the start of a file covered by its fingerprint.
pub const FINGERPRINT_BYTES: usize = 1024;
/// Bytes before a saved offset covered by its check hash.
pub const PREFIX_BYTES: usize = 64;

/// Device and inode of a file.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct FileId {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
}

impl FileId {
    /// The identity of the file behind `meta`.
    pub fn of(meta: &Metadata) -> Self {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.dev, self.ino)
    }
}

/// A hash of a byte range: its length and its 64-bit xxh3, written as hex in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct RangeHash {
    /// Number of bytes hashed.
    pub len: u32,
    /// xxh3-64 of the bytes, as 16 hex digits.
    #[serde(with = "hex_u64")]
    pub hash: u64,
}

mod hex_u64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{v:016x}"))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        u64::from_str_radix(&text, 16).map_err(serde::de::Error::custom)
    }
}

impl RangeHash {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        RangeHash {
            len: bytes.len() as u32,
            hash: xxh3_64(bytes),
        }
    }
}

/// Reads up to `len` bytes at `offset` (fewer at end of file).
pub(crate) fn read_range(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// The fingerprint of a file: the hash of its first bytes (all of them when shorter than
/// [`FINGERPRINT_BYTES`]).
pub(crate) fn fingerprint(file: &File) -> io::Result<RangeHash> {
    Ok(RangeHash::of(&read_range(file, 0, FINGERPRINT_BYTES)?))
}

/// The first [`FINGERPRINT_BYTES`] (or fewer, all there is) of a gzip file's content:
/// what the fingerprint of the file it was compressed from was taken over. `None` when it
/// cannot be read or is not whole (not gzip, or still being written).
pub(crate) fn gzip_head(path: &std::path::Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut decoder = flate2::read::MultiGzDecoder::new(File::open(path).ok()?);
    let mut head = vec![0; FINGERPRINT_BYTES];
    let mut filled = 0;
    while filled < head.len() {
        match decoder.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    head.truncate(filled);
    Some(head)
}

/// The size of a gzip file's content, from its trailer (ISIZE: the size modulo 2^32, of
/// its last member), or its own size when it is not gzip or the trailer cannot be that
/// (deflate expands at most 1032 times).
pub(crate) fn gzip_content_len(path: &std::path::Path) -> Option<u64> {
    let file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut magic = [0; 2];
    if len < 18 || file.read_exact_at(&mut magic, 0).is_err() || magic != [0x1f, 0x8b] {
        return Some(len);
    }
    let mut trailer = [0; 4];
    file.read_exact_at(&mut trailer, len - 4).ok()?;
    let isize = u64::from(u32::from_le_bytes(trailer));
    Some(if isize >= (len - 18) / 1032 {
        isize
    } else {
        len
    })
}

impl RangeHash {
    /// Whether `head`, the first bytes of a file, starts with the bytes this was taken
    /// over.
    pub(crate) fn starts(&self, head: &[u8]) -> bool {
        head.len() >= self.len as usize && xxh3_64(&head[..self.len as usize]) == self.hash
    }
}

/// Whether `file` still starts with the bytes `fp` was taken from (it may have grown since).
pub(crate) fn fingerprint_matches(file: &File, fp: &RangeHash) -> io::Result<bool> {
    let bytes = read_range(file, 0, fp.len as usize)?;
    Ok(bytes.len() == fp.len as usize && xxh3_64(&bytes) == fp.hash)
}

/// The hash of the bytes just before `offset`.
pub(crate) fn prefix_hash(file: &File, offset: u64) -> io::Result<RangeHash> {
    let len = offset.min(PREFIX_BYTES as u64);
    Ok(RangeHash::of(&read_range(
        file,
        offset - len,
        len as usize,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn fingerprint_grows_with_short_files_and_detects_reuse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.log");
        let mut f = File::create(&path).unwrap();
        f.write_all(b"short").unwrap();
        let r = File::open(&path).unwrap();
        let fp = fingerprint(&r).unwrap();
        assert_eq!(fp.len, 5);
        f.write_all(&[b'x'; 2000]).unwrap();
        assert!(
            fingerprint_matches(&r, &fp).unwrap(),
            "a grown file still matches"
        );
        assert_eq!(fingerprint(&r).unwrap().len, FINGERPRINT_BYTES as u32);
        std::fs::write(&path, b"other").unwrap();
        assert!(!fingerprint_matches(&File::open(&path).unwrap(), &fp).unwrap());
        std::fs::write(&path, b"sho").unwrap();
        assert!(
            !fingerprint_matches(&File::open(&path).unwrap(), &fp).unwrap(),
            "shorter file"
        );
    }

    #[test]
    fn a_gzip_file_is_known_by_the_fingerprint_of_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let gzip = |name: &str, content: &[u8]| {
            let path = dir.path().join(name);
            let mut z = flate2::write::GzEncoder::new(
                File::create(&path).unwrap(),
                flate2::Compression::fast(),
            );
            z.write_all(content).unwrap();
            z.finish().unwrap();
            path
        };
        let long: Vec<u8> = (0..3000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let plain = dir.path().join("plain.log");
        std::fs::write(&plain, &long).unwrap();
        let fp = fingerprint(&File::open(&plain).unwrap()).unwrap();

        let head = gzip_head(&gzip("long.gz", &long)).unwrap();
        assert_eq!(
            head.len(),
            FINGERPRINT_BYTES,
            "only the fingerprint's bytes"
        );
        assert!(fp.starts(&head));
        let other = gzip_head(&gzip("other.gz", &long[1..])).unwrap();
        assert!(!fp.starts(&other), "another content");

        let short = gzip_head(&gzip("short.gz", b"short")).unwrap();
        assert_eq!(short, b"short", "all of a short file");
        assert!(RangeHash::of(b"sho").starts(&short));
        assert!(!RangeHash::of(b"short and more").starts(&short));

        // Being written (cut before the fingerprint's bytes), or not gzip: not known by
        // its content. Bytes that do not compress, so that the cut is early in them.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..3000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let whole = std::fs::read(gzip("cut.gz", &noise)).unwrap();
        assert!(whole.len() > 2000);
        let cut = dir.path().join("cut.gz");
        std::fs::write(&cut, &whole[..500]).unwrap();
        assert_eq!(gzip_head(&cut), None);
        assert_eq!(gzip_head(&plain), None);
        assert_eq!(gzip_head(&dir.path().join("missing.gz")), None);

        // What was lost with a compressed file is counted in bytes of its content.
        assert_eq!(gzip_content_len(&dir.path().join("long.gz")), Some(3000));
        assert_eq!(gzip_content_len(&dir.path().join("short.gz")), Some(5));
        std::fs::write(&cut, [b'x'; 100]).unwrap();
        assert_eq!(
            gzip_content_len(&cut),
            Some(100),
            "no trailer: its own size"
        );
    }

    #[test]
    fn prefix_hash_and_json_form() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.log");
        std::fs::write(&path, b"line one\nline two\n").unwrap();
        let f = File::open(&path).unwrap();
        assert_eq!(prefix_hash(&f, 9).unwrap(), RangeHash::of(b"line one\n"));
        assert_eq!(prefix_hash(&f, 0).unwrap().len, 0);
        let json = serde_json::to_string(&RangeHash { len: 3, hash: 0xab }).unwrap();
        assert_eq!(json, r#"{"len":3,"hash":"00000000000000ab"}"#);
        assert_eq!(serde_json::from_str::<RangeHash>(&json).unwrap().hash, 0xab);
    }
}
