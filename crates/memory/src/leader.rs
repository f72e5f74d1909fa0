use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use galaxy_runtime_ports::{LeaderLock, PortResult};

/// The [`LeaderLock`] of a process that runs alone: it starts held, `try_acquire` always
/// succeeds, and only `release` gives it up (until the next `try_acquire`).
#[derive(Debug)]
pub struct AlwaysLeader {
    held: AtomicBool,
    acquisitions: AtomicU64,
}

impl Default for AlwaysLeader {
    fn default() -> Self {
        Self::new()
    }
}

impl AlwaysLeader {
    /// A lock that is held.
    pub fn new() -> Self {
        Self {
            held: AtomicBool::new(true),
            acquisitions: AtomicU64::new(0),
        }
    }

    /// Calls of [`LeaderLock::try_acquire`] so far.
    pub fn acquisitions(&self) -> u64 {
        self.acquisitions.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl LeaderLock for AlwaysLeader {
    async fn try_acquire(&self) -> PortResult<bool> {
        self.acquisitions.fetch_add(1, Ordering::SeqCst);
        self.held.store(true, Ordering::SeqCst);
        Ok(true)
    }

    async fn is_held(&self) -> PortResult<bool> {
        Ok(self.held.load(Ordering::SeqCst))
    }

    async fn release(&self) -> PortResult<()> {
        self.held.store(false, Ordering::SeqCst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn starts_held() {
        let lock = AlwaysLeader::new();
        assert!(lock.is_held().await.unwrap());
        assert!(lock.try_acquire().await.unwrap());
        assert_eq!(lock.acquisitions(), 1);
    }
}
