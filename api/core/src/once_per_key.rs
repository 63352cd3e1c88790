//! Work done once per key by whichever task asks first, its result shared
//! with every task that asks after, for as long as the key is remembered.
//!
//! A thousand subscribers resolving the same event want the same answer;
//! the first to ask computes it and the others wait for it and share it.
//! Only the newest keys are remembered: a forgotten one is only computed
//! again. A failed computation is not remembered, so the next asker tries
//! again.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

/// Results computed once per key, the newest `capacity` keys remembered.
#[derive(Debug)]
pub struct OncePerKey<K, V> {
    capacity: usize,
    remembered: Mutex<Remembered<K, V>>,
}

#[derive(Debug)]
struct Remembered<K, V> {
    cells: HashMap<K, Arc<OnceCell<V>>>,
    /// Oldest first, to forget in that order.
    order: VecDeque<K>,
}

impl<K: Hash + Eq + Clone, V> OncePerKey<K, V> {
    /// Remembers the newest `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            remembered: Mutex::new(Remembered { cells: HashMap::new(), order: VecDeque::new() }),
        }
    }

    /// Returns the key's cell: filled by the first caller of
    /// `get_or_try_init` on it, shared by everyone who holds it.
    pub fn cell(&self, key: &K) -> Arc<OnceCell<V>> {
        let mut remembered = self.remembered.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(cell) = remembered.cells.get(key) {
            return cell.clone();
        }
        let cell = Arc::new(OnceCell::new());
        remembered.cells.insert(key.clone(), cell.clone());
        remembered.order.push_back(key.clone());
        while remembered.order.len() > self.capacity {
            if let Some(oldest) = remembered.order.pop_front() {
                remembered.cells.remove(&oldest);
            }
        }
        cell
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_askers_of_one_key_share_one_computation() {
        let shared = Arc::new(OncePerKey::<u32, u32>::new(8));
        let computed = Arc::new(AtomicUsize::new(0));
        let askers: Vec<_> = (0..50)
            .map(|_| {
                let (shared, computed) = (shared.clone(), computed.clone());
                tokio::spawn(async move {
                    *shared
                        .cell(&7)
                        .get_or_init(|| async {
                            computed.fetch_add(1, Ordering::SeqCst);
                            tokio::task::yield_now().await;
                            49
                        })
                        .await
                })
            })
            .collect();
        for asker in askers {
            assert_eq!(asker.await.unwrap(), 49);
        }
        assert_eq!(computed.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_oldest_key_is_forgotten_first_and_a_failure_is_not_kept() {
        let shared = OncePerKey::<u32, u32>::new(2);
        for key in 1..=3 {
            shared.cell(&key).get_or_init(|| async move { key * 10 }).await;
        }
        assert!(shared.cell(&1).get().is_none(), "the oldest key is forgotten");
        assert_eq!(shared.cell(&3).get(), Some(&30));
        let failing = shared.cell(&4);
        let failed: Result<&u32, ()> = failing.get_or_try_init(|| async { Err(()) }).await;
        assert!(failed.is_err());
        assert_eq!(*shared.cell(&4).get_or_init(|| async { 40 }).await, 40);
    }
}
