//! Benchmarks. Filled by the create issue.

use crate::Result;

pub(crate) fn run(_args: &[String]) -> Result {
    Err("no benchmarks yet".into())
}
