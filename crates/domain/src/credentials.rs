//! Framerr's rule for telling an encrypted credential from a plaintext one
//! (spec section 6).

/// At least 44 characters, not starting with `{` or `[`, and all base64
/// (`[A-Za-z0-9+/]+=*`).
pub fn looks_encrypted(value: &str) -> bool {
    let body = value.trim_end_matches('=');
    value.len() >= 44
        && !value.starts_with(['{', '['])
        && !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// The credential columns Framerr encrypts: (table, column). Integration
/// configs are JSON; the OIDC client secret is text.
pub const ENCRYPTED_COLUMNS: [(&str, &str); 2] =
    [("integration_instances", "config_encrypted"), ("oidc_config", "client_secret")];

#[cfg(test)]
mod tests {
    use super::*;

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
}
