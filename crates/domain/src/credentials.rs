//! Framerr's field-level encryption of credentials (spec section 6), as
//! policy: which columns hold credentials, what a backup writes for each
//! value, and what a restore does with it. The SQLite adapter runs these
//! functions over the rows; it decides nothing itself.

use crate::error::CryptoError;
use crate::ports::FieldCipher;

/// At least 44 characters, not starting with `{` or `[`, and all base64
/// (`[A-Za-z0-9+/]+=*`).
pub fn looks_encrypted(value: &str) -> bool {
    let body = value.trim_end_matches('=');
    value.len() >= 44
        && !value.starts_with(['{', '['])
        && !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// A column that holds credentials encrypted with the instance key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialColumn {
    /// `integration_instances.config_encrypted`: each integration's JSON.
    IntegrationConfig,
    /// `oidc_config.client_secret`: the SSO client secret, text.
    OidcClientSecret,
}

impl CredentialColumn {
    pub const ALL: [CredentialColumn; 2] = [CredentialColumn::IntegrationConfig, CredentialColumn::OidcClientSecret];

    pub fn table(self) -> &'static str {
        match self {
            CredentialColumn::IntegrationConfig => "integration_instances",
            CredentialColumn::OidcClientSecret => "oidc_config",
        }
    }

    pub fn column(self) -> &'static str {
        match self {
            CredentialColumn::IntegrationConfig => "config_encrypted",
            CredentialColumn::OidcClientSecret => "client_secret",
        }
    }
}

/// What a portable backup holds for a stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Portable {
    /// Plaintext already (or empty): goes in as it is.
    AsIs,
    /// Decrypted with this instance's key.
    Decrypted(String),
    /// Looks encrypted but does not open with this key: goes in as it is
    /// (Framerr does the same), and is counted.
    Undecryptable,
}

/// A value as it goes into a portable backup (one another instance with
/// another key can restore). Framerr forgets the OIDC secret; we do not.
pub fn portable(value: &str, cipher: &dyn FieldCipher) -> Portable {
    if !looks_encrypted(value) {
        return Portable::AsIs;
    }
    match cipher.decrypt(value) {
        Ok(plain) => Portable::Decrypted(plain),
        Err(_) => Portable::Undecryptable,
    }
}

/// What a restore does with a restored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restored {
    Keep,
    /// Plaintext, now encrypted with this instance's key.
    Encrypt(String),
    /// Encrypted with a key this instance does not have: the credential has
    /// to be entered again.
    Unreadable,
}

/// A restored value: plaintext is encrypted with this instance's key (when
/// it has one; an integration config only when it is JSON, as Framerr);
/// an encrypted value is kept, and reported when this key does not open it.
pub fn restored(
    column: CredentialColumn,
    value: &str,
    cipher: Option<&dyn FieldCipher>,
) -> Result<Restored, CryptoError> {
    if value.is_empty() {
        return Ok(Restored::Keep);
    }
    if looks_encrypted(value) {
        let opens = cipher.is_some_and(|c| c.decrypt(value).is_ok());
        return Ok(if opens { Restored::Keep } else { Restored::Unreadable });
    }
    let Some(cipher) = cipher else { return Ok(Restored::Keep) };
    if column == CredentialColumn::IntegrationConfig && serde_json::from_str::<serde::de::IgnoredAny>(value).is_err() {
        return Ok(Restored::Keep);
    }
    Ok(Restored::Encrypt(cipher.encrypt(value)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reverses the text and prefixes it, so "encrypted" values look
    /// encrypted and a wrong key is detectable.
    struct Rot(char);
    impl FieldCipher for Rot {
        fn decrypt(&self, value: &str) -> Result<String, CryptoError> {
            let rest = value.strip_prefix(self.0).ok_or(CryptoError::WrongKey)?;
            Ok(rest.trim_end_matches('A').chars().rev().collect())
        }
        fn encrypt(&self, plaintext: &str) -> Result<String, CryptoError> {
            Ok(format!("{}{}{}", self.0, plaintext.chars().rev().collect::<String>(), "A".repeat(44)))
        }
    }

    #[test]
    fn framerrs_rule() {
        let b64 = "A".repeat(44);
        assert!(looks_encrypted(&b64));
        assert!(looks_encrypted(&format!("{}==", "Ab+/".repeat(11))));
        assert!(!looks_encrypted(&"A".repeat(43)));
        assert!(!looks_encrypted(&format!("{{{}", "A".repeat(50))));
        assert!(!looks_encrypted(&format!("[{}", "A".repeat(50))));
        assert!(!looks_encrypted(&format!("{}-", "A".repeat(50))));
        assert!(!looks_encrypted(&format!("{}=A", "A".repeat(50))));
        assert!(!looks_encrypted(r#"{"url":"http://legacy.local","more":"padding-padding"}"#));
        assert!(!looks_encrypted(&"=".repeat(50)));
    }

    #[test]
    fn restore_encrypts_plaintext_and_reports_foreign_ciphertext() {
        let (ours, theirs) = (Rot('K'), Rot('Z'));
        let json = r#"{"token":"abc"}"#;
        let sealed = ours.encrypt("secret").unwrap();
        let foreign = theirs.encrypt("secret").unwrap();
        use CredentialColumn::*;
        assert!(
            matches!(restored(IntegrationConfig, json, Some(&ours)).unwrap(), Restored::Encrypt(v) if ours.decrypt(&v).unwrap() == json)
        );
        assert_eq!(restored(IntegrationConfig, "not json", Some(&ours)).unwrap(), Restored::Keep);
        assert!(matches!(restored(OidcClientSecret, "plain secret", Some(&ours)).unwrap(), Restored::Encrypt(_)));
        assert_eq!(restored(IntegrationConfig, &sealed, Some(&ours)).unwrap(), Restored::Keep);
        assert_eq!(restored(OidcClientSecret, &foreign, Some(&ours)).unwrap(), Restored::Unreadable);
        assert_eq!(restored(IntegrationConfig, &sealed, None).unwrap(), Restored::Unreadable);
        assert_eq!(restored(IntegrationConfig, json, None).unwrap(), Restored::Keep);
        assert_eq!(restored(OidcClientSecret, "", Some(&ours)).unwrap(), Restored::Keep);
        assert_eq!(portable(&sealed, &ours), Portable::Decrypted("secret".into()));
        assert_eq!(portable(&foreign, &ours), Portable::Undecryptable);
        assert_eq!(portable(json, &ours), Portable::AsIs);
    }
}
