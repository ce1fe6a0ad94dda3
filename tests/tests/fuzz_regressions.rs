//! Inputs the fuzzers found (and a few crafted ones) replayed on every
//! test run: each parser must end in a value or an error, never a panic.

#![allow(clippy::unwrap_used)]

fn replay(target: &str, run: impl Fn(&[u8])) -> usize {
    let dir = backup_e2e::repo_root().join("fuzz/regressions").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).into_iter().flatten() {
        let path = entry.unwrap().path();
        run(&std::fs::read(&path).unwrap());
        n += 1;
    }
    n
}

/// The smallest hostile shapes: truncations of a real backup, an end
/// record pointing anywhere, a Zip64 locator with nothing behind it.
fn crafted_zips() -> Vec<Vec<u8>> {
    let real = std::fs::read(backup_e2e::fixtures().join("backups/framerr-manual-2026-11-26T22-17-29.zip")).unwrap();
    let mut cases: Vec<Vec<u8>> = (0..real.len()).step_by(997).map(|n| real[..n].to_vec()).collect();
    let mut eocd = b"PK\x05\x06".to_vec();
    eocd.extend_from_slice(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]);
    cases.push(eocd.clone());
    let mut zip64 = b"PK\x06\x07".to_vec();
    zip64.extend_from_slice(&[0xff; 16]);
    zip64.extend_from_slice(&eocd);
    cases.push(zip64);
    let mut flipped = real.clone();
    for i in (0..flipped.len()).step_by(101) {
        flipped[i] ^= 0x5a;
    }
    cases.push(flipped);
    cases
}

#[test]
fn the_zip_reader_survives_every_known_input() {
    for case in crafted_zips() {
        backup_archive::fuzzing::read_untrusted_zip(&case);
    }
    replay("zip_reader", backup_archive::fuzzing::read_untrusted_zip);
}

#[test]
fn the_envelope_header_parser_survives_every_known_input() {
    let real = std::fs::read(backup_e2e::fixtures().join("backups/framerr-manual-2026-11-26T22-17-29.framerr-backup"))
        .unwrap();
    for n in 0..600.min(real.len()) {
        backup_crypto::envelope::fuzz_header(&real[..n]);
    }
    replay("envelope_header", backup_crypto::envelope::fuzz_header);
}

#[test]
fn the_manifest_parser_survives_every_known_input() {
    let real = std::fs::read(backup_e2e::fixtures().join("framerr-manual-2026-11-26T22-17-29.manifest.json")).unwrap();
    for n in 0..real.len() {
        let _ = backup_domain::Manifest::from_json(&real[..n]);
    }
    replay("manifest", |data| {
        let _ = backup_domain::Manifest::from_json(data);
    });
}
