//! Our ZIPs read back with our reader and with an independent one
//! (python3's zipfile), in the plain and the Zip64 layout; broken and
//! hostile ZIPs are refused with an error, never a panic.

#![allow(clippy::unwrap_used)]

use std::io::{Cursor, Read};
use std::process::Command;

use backup_archive::{DeflateOptions, ReadLimits, ZipError, ZipReader, ZipWriter};
use proptest::prelude::*;
use time::macros::datetime;

fn sample_entries() -> Vec<(String, Vec<u8>)> {
    let text: Vec<u8> = (0..120_000u32).flat_map(|i| format!("row {i} {}\n", i % 31).into_bytes()).collect();
    let noise: Vec<u8> = (0..700_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    vec![
        ("framerr.db".into(), text),
        ("profile-pictures/ü-admin.jpg".into(), noise),
        ("custom-icons/empty.svg".into(), Vec::new()),
        ("manifest.json".into(), b"{}".to_vec()),
    ]
}

fn build(entries: &[(String, Vec<u8>)], zip64: bool) -> Vec<u8> {
    let opts = DeflateOptions { level: 6, threads: 2, block: 64 * 1024 };
    let mut zip = ZipWriter::new(Vec::new(), opts);
    if zip64 {
        zip = zip.force_zip64();
    }
    for (name, data) in entries {
        let digest = zip.add(name, datetime!(2026-11-26 03:00 UTC), data.len() as u64, &data[..], |_| {}).unwrap();
        assert_eq!(digest.size, data.len() as u64);
    }
    zip.finish().unwrap()
}

fn read_all(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut zip = ZipReader::open(Cursor::new(bytes), ReadLimits::default()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for i in 0..zip.entries().len() {
        let name = zip.entries()[i].name.clone();
        let mut data = Vec::new();
        zip.open_entry(i).map_err(|e| e.to_string())?.read_to_end(&mut data).map_err(|e| e.to_string())?;
        out.push((name, data));
    }
    Ok(out)
}

#[test]
fn round_trips_through_our_reader() {
    for zip64 in [false, true] {
        let entries = sample_entries();
        assert_eq!(read_all(&build(&entries, zip64)).unwrap(), entries, "zip64 {zip64}");
    }
}

#[test]
fn python_zipfile_reads_and_verifies_it() {
    for zip64 in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.zip");
        let entries = sample_entries();
        std::fs::write(&path, build(&entries, zip64)).unwrap();
        let script = r#"
import sys, zipfile, hashlib
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
for i in z.infolist():
    assert i.compress_type == zipfile.ZIP_DEFLATED, i
    print(i.filename, len(z.read(i)), hashlib.sha256(z.read(i)).hexdigest())
"#;
        let out = Command::new("python3").arg("-c").arg(script).arg(&path).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let want: String = entries
            .iter()
            .map(|(n, d)| {
                use sha2::Digest;
                format!("{n} {} {}\n", d.len(), hex::encode(sha2::Sha256::digest(d)))
            })
            .collect();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), want, "zip64 {zip64}");
    }
}

#[test]
fn detects_corruption_of_data_and_structure() {
    let good = build(&sample_entries(), false);
    // Flip a byte inside the first entry's compressed data.
    let mut bad = good.clone();
    bad[200] ^= 0x40;
    assert!(read_all(&bad).is_err());
    // Truncations anywhere are refused.
    for cut in [0, 10, 21, good.len() / 2, good.len() - 23, good.len() - 1] {
        assert!(read_all(&good[..cut]).is_err(), "cut at {cut}");
    }
    // A local header that names another file.
    let mut renamed = good.clone();
    let pos = renamed.windows(10).position(|w| w == b"framerr.db").unwrap();
    renamed[pos] = b'g';
    assert!(read_all(&renamed).unwrap_err().contains("local header names another file"));
    // Not a ZIP at all.
    let err = ZipReader::open(Cursor::new(b"hello world, this is not a zip archive".to_vec()), ReadLimits::default());
    assert!(matches!(err, Err(ZipError::NotZip(_))));
}

#[test]
fn a_lying_size_is_caught_before_inflating_everything() {
    // A zip bomb claims a small size; the reader stops one byte past it.
    let data = vec![0u8; 5_000_000];
    let mut bytes = build(&[("framerr.db".into(), data)], false);
    // Patch the central directory's uncompressed size (offset 24 in the record) to 1000.
    let cd = bytes.windows(4).rposition(|w| w == [0x50, 0x4b, 0x01, 0x02]).unwrap();
    bytes[cd + 24..cd + 28].copy_from_slice(&1000u32.to_le_bytes());
    let err = read_all(&bytes).unwrap_err();
    assert!(err.contains("larger than its declared size"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Arbitrary damage never panics the reader.
    #[test]
    fn damaged_archives_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>()) {
        let mut bytes = build(&sample_entries()[2..], false);
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let len = cut.index(bytes.len() + 1);
        let _ = read_all(&bytes[..len]);
    }
}
