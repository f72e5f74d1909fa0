use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use galaxy_runtime_model::{GameId, RuntimeRecord};
use galaxy_runtime_ports::Cache;

/// A [`Cache`] in a hash map, counting what it is given.
#[derive(Debug, Default)]
pub struct MemoryCache {
    records: RwLock<HashMap<GameId, RuntimeRecord>>,
    puts: AtomicU64,
}

impl MemoryCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every remembered record, sorted by game id.
    pub fn records(&self) -> Vec<RuntimeRecord> {
        let mut records: Vec<_> = self
            .records
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        records.sort_by_key(|r| r.game_id);
        records
    }

    /// How many games have a remembered record.
    pub fn len(&self) -> usize {
        self.records
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no record is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls of [`Cache::put_runtime`] so far.
    pub fn puts(&self) -> u64 {
        self.puts.load(Ordering::SeqCst)
    }
}

impl Cache for MemoryCache {
    fn put_runtime(&self, record: RuntimeRecord) {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.records
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(record.game_id, record);
    }

    fn get_runtime(&self, game_id: GameId) -> Option<RuntimeRecord> {
        self.records
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&game_id)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use galaxy_runtime_model::{RuntimeStatus, Timestamp};

    use super::*;

    #[test]
    fn counts_puts_and_lists_sorted() {
        let cache = MemoryCache::new();
        assert!(cache.is_empty());
        let mut records: Vec<_> = (0..3)
            .map(|_| {
                RuntimeRecord::new(
                    GameId::new_random(),
                    RuntimeStatus::Running,
                    Timestamp::now(),
                )
            })
            .collect();
        for r in &records {
            cache.put_runtime(r.clone());
        }
        cache.put_runtime(records[0].clone());
        records.sort_by_key(|r| r.game_id);
        assert_eq!(cache.records(), records);
        assert_eq!((cache.len(), cache.puts()), (3, 4));
    }
}
