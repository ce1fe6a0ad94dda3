//! Named points where crash and race tests stop or slow a process.
//!
//! With the `failpoints` feature, `FRAMERR_FAILPOINT=<name>` aborts the
//! process at that point, as a kill -9 would, and
//! `FRAMERR_FAILPOINT=<name>=sleep:<ms>` pauses it there (several points
//! separated by commas). Without the feature, which is how every shipped
//! binary is built, this is an empty function: no environment variable can
//! stop a release binary.

/// Aborts or pauses here when a test asks for it.
#[cfg(feature = "failpoints")]
pub fn failpoint(name: &str) {
    let Ok(spec) = std::env::var("FRAMERR_FAILPOINT") else { return };
    for point in spec.split(',') {
        let (point, action) = point.split_once('=').unwrap_or((point, "abort"));
        if point != name {
            continue;
        }
        match action.strip_prefix("sleep:").and_then(|ms| ms.parse::<u64>().ok()) {
            Some(ms) => std::thread::sleep(std::time::Duration::from_millis(ms)),
            None => std::process::abort(),
        }
    }
}

/// Does nothing: failpoints are compiled out.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn failpoint(_name: &str) {}
