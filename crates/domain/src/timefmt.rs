//! The one timestamp text format Framerr uses in manifests and schedules:
//! ISO-8601 UTC with milliseconds, `2026-11-26T03:00:00.123Z`
//! (JavaScript's `Date.prototype.toISOString`).

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// Formats as JavaScript's `toISOString` does.
pub fn to_iso_millis(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC)
        .format(format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"))
        .unwrap_or_default()
}

/// Reads any RFC 3339 timestamp (Framerr writes the `toISOString` form).
pub fn parse_iso(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// serde helpers for a required timestamp field.
pub(crate) mod iso {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use time::OffsetDateTime;

    pub(crate) fn serialize<S: Serializer>(at: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::to_iso_millis(*at))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_iso(&text).ok_or_else(|| D::Error::custom(format!("not an ISO-8601 timestamp: {text:?}")))
    }
}

/// serde helper for an optional timestamp field (`None` is `null`).
pub(crate) mod iso_opt {
    use serde::Serializer;
    use time::OffsetDateTime;

    pub(crate) fn serialize<S: Serializer>(at: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => s.serialize_str(&super::to_iso_millis(*at)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn matches_javascript_to_iso_string() {
        assert_eq!(to_iso_millis(datetime!(2026-11-26 03:00:00.123456 UTC)), "2026-11-26T03:00:00.123Z");
        assert_eq!(to_iso_millis(datetime!(2026-11-26 04:00:00 +1)), "2026-11-26T03:00:00.000Z");
        assert_eq!(parse_iso("2026-11-22T03:00:04.512Z"), Some(datetime!(2026-11-22 03:00:04.512 UTC)));
        assert_eq!(parse_iso("yesterday"), None);
    }
}
