//! Secrets as values: zeroized when dropped, never printed.

use std::fmt;

use zeroize::Zeroizing;

/// A password, zeroized on drop; `Debug` shows `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Zeroizing<String>);

impl Password {
    pub fn new(text: impl Into<String>) -> Self {
        Password(Zeroizing::new(text.into()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in characters (Framerr counts characters, not bytes).
    pub fn chars(&self) -> usize {
        self.0.chars().count()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// Whether `a` and `b` are equal, in time that depends only on their
/// lengths: for tags and tokens, where an early exit would leak how many
/// leading bytes matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn constant_time_eq_compares() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn never_printed() {
        let p = super::Password::new("hunter2 hunter2");
        assert_eq!(format!("{p:?}"), "Password([redacted])");
        assert_eq!(p.chars(), 15);
    }
}
