//! The rows a memory adapter holds: by key, listed in the order they were added, each shared
//! with the listings handed out.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::Arc;

/// Rows keyed by `K`, listed in the order they were first added.
///
/// A listing hands out the rows' [`Arc`]s, not copies: listing a fleet of 100k games costs a
/// reference count per row, not a second fleet. A row is changed through
/// [`Table::get_mut`], which copies it first only while a listing still holds it
/// ([`Arc::make_mut`]), so a listing stays a snapshot.
///
/// Rows are listed in the order they were added, not by key, because that is the order they
/// were allocated in: a reader walking a listing of 100k rows then reads memory in order,
/// where by key (random container ids, random game ids) it would jump across the whole fleet
/// for every row — twice the planner's time, measured on a quick pass of 100k games.
#[derive(Debug)]
pub(crate) struct Table<K, V> {
    /// The row of each key, by the order it was added in.
    rows: BTreeMap<u64, Arc<V>>,
    /// The order of each key's row.
    index: HashMap<K, u64>,
    /// The order the next new key gets.
    next: u64,
}

impl<K, V> Default for Table<K, V> {
    fn default() -> Self {
        Self {
            rows: BTreeMap::new(),
            index: HashMap::new(),
            next: 0,
        }
    }
}

impl<K: Eq + Hash, V: Clone> Table<K, V> {
    /// Puts a row in, replacing (in its place) any row of the same key; returns the row it
    /// replaced.
    pub(crate) fn insert(&mut self, key: K, row: V) -> Option<Arc<V>> {
        let next = &mut self.next;
        let order = *self.index.entry(key).or_insert_with(|| {
            *next += 1;
            *next
        });
        self.rows.insert(order, Arc::new(row))
    }

    /// The row of `key`.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&Arc<V>>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.index.get(key).and_then(|order| self.rows.get(order))
    }

    /// The row of `key`, to change; copied first if a listing holds it.
    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let order = self.index.get(key)?;
        self.rows.get_mut(order).map(Arc::make_mut)
    }

    /// Whether `key` has a row.
    pub(crate) fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.index.contains_key(key)
    }

    /// Takes the row of `key` out.
    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let order = self.index.remove(key)?;
        self.rows.remove(&order).map(Arc::unwrap_or_clone)
    }

    /// Removes every row.
    pub(crate) fn clear(&mut self) {
        self.rows.clear();
        self.index.clear();
    }

    /// How many rows there are.
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    /// Every row, in the order the rows were added.
    pub(crate) fn values(&self) -> impl Iterator<Item = &Arc<V>> {
        self.rows.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_listed_in_the_order_they_were_added_and_replaced_in_place() {
        let mut table = Table::default();
        table.insert("b", 1);
        table.insert("a", 2);
        table.insert("c", 3);
        assert_eq!(table.insert("a", 20).as_deref(), Some(&2));
        let listed: Vec<i32> = table.values().map(|v| **v).collect();
        assert_eq!(listed, vec![1, 20, 3]);

        assert_eq!(table.remove(&"b"), Some(1));
        assert!(!table.contains_key(&"b"));
        table.insert("b", 4);
        let listed: Vec<i32> = table.values().map(|v| **v).collect();
        assert_eq!(listed, vec![20, 3, 4], "a key added again goes last");
        assert_eq!(table.len(), 3);
    }

    #[test]
    fn a_listing_is_a_snapshot_that_later_changes_do_not_alter() {
        let mut table = Table::default();
        table.insert(1, String::from("before"));
        let listed: Vec<Arc<String>> = table.values().cloned().collect();
        *table.get_mut(&1).expect("a row") = String::from("after");
        assert_eq!(*listed[0], "before");
        assert_eq!(**table.get(&1).expect("a row"), "after");

        // Without a listing holding it, the row is changed where it is.
        let before = Arc::as_ptr(table.get(&1).expect("a row"));
        drop(listed);
        table.get_mut(&1).expect("a row").push('!');
        assert_eq!(Arc::as_ptr(table.get(&1).expect("a row")), before);
        assert_eq!(**table.get(&1).expect("a row"), "after!");
    }
}
