//! Framerr's own encrypted backup opens with its documented password,
//! every intermediate key matches golden.json, and the payload is byte for
//! byte the ZIP Framerr's decryption returns.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use backup_crypto::envelope::{EnvelopeError, decrypt_payload, derive_kek, read_header, unwrap_mbk};
use backup_crypto::keywrap;

fn fixtures() -> PathBuf {
    std::env::var_os("FRAMERR_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"))
        .join("framerr-0.4.1")
}

#[test]
fn opens_framerrs_encrypted_backup() {
    let golden: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("golden.json")).unwrap()).unwrap();
    let g = golden["files"].as_array().unwrap().iter().find(|f| f["format"] == "encrypted").unwrap();
    let file = std::fs::read(fixtures().join("backups").join(g["file"].as_str().unwrap())).unwrap();
    let mut input = &file[..];
    let (header, payload_at) = read_header(&mut input).unwrap();
    assert_eq!(payload_at as u64, g["payloadOffset"].as_u64().unwrap());
    assert_eq!(serde_json::to_value(&header).unwrap(), g["header"]);

    let password = "correct horse battery";
    let salt = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &header.salt).unwrap();
    let kek = derive_kek(password, &salt, header.iterations);
    assert_eq!(hex::encode(kek.as_bytes()), g["keys"]["kekHex"]);
    let mbk = unwrap_mbk(&header, password).unwrap();
    assert_eq!(hex::encode(mbk.as_bytes()), g["keys"]["mbkHex"]);
    let dek = keywrap::unwrap(&header.wrapped_dek, &mbk).unwrap();
    assert_eq!(hex::encode(dek.as_bytes()), g["keys"]["dekHex"]);

    let mut zip = Vec::new();
    decrypt_payload(&header, &mbk, &mut input, &mut zip).unwrap();
    let framerrs = std::fs::read(fixtures().join(g["decryptedZip"]["file"].as_str().unwrap())).unwrap();
    assert!(zip == framerrs, "decrypted payload differs from Framerr's");

    // The same through the unsealer restore uses: decrypted where it is
    // read, the tag checked alongside.
    use backup_domain::restore::Unsealer;
    let unsealed = backup_crypto::unseal::EnvelopeUnsealer::default()
        .unseal(
            std::sync::Arc::new(file.clone()),
            &backup_domain::restore::BackupKey::Password(backup_domain::Password::new(password)),
        )
        .unwrap();
    let mut plain = vec![0u8; unsealed.payload.size() as usize];
    assert_eq!(unsealed.payload.read_at(&mut plain, 0).unwrap(), plain.len());
    assert!(plain == framerrs, "unsealed payload differs from Framerr's");
    futures::executor::block_on(unsealed.authenticity.check()).unwrap();

    assert!(matches!(unwrap_mbk(&header, "correct horse battery!"), Err(EnvelopeError::WrongPassword)));
}
