//! One backup or restore at a time, shared by everything that starts one
//! (the CLI, the HTTP API, the scheduler) inside a process.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A flag that at most one holder can raise at a time.
#[derive(Debug, Clone, Default)]
pub struct BusyFlag(Arc<AtomicBool>);

/// Lowers the flag when dropped, whatever way the work ended.
#[derive(Debug)]
pub struct BusyGuard(Arc<AtomicBool>);

impl BusyFlag {
    pub fn try_acquire(&self) -> Option<BusyGuard> {
        self.0
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| BusyGuard(Arc::clone(&self.0)))
    }

    pub fn is_busy(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time() {
        let flag = BusyFlag::default();
        let guard = flag.try_acquire().unwrap();
        assert!(flag.is_busy());
        assert!(flag.clone().try_acquire().is_none());
        drop(guard);
        assert!(!flag.is_busy());
        assert!(flag.try_acquire().is_some());
    }
}
