//! This replica's lease on the work it owns (SPEC §9), as it knows it: when its heartbeat
//! last reached the store, since when it has been continuously live, and its epoch — the
//! fencing token stamped on what it claims, new after each lapse.
//!
//! A database that stalls longer than the lease lapses every replica's lease at once. When
//! it answers again, the first replica to renew would otherwise find the others "dead" and
//! take over work they are still doing. So a replica takes over nothing until it has been
//! live for a whole lease again (its peers, if alive, have renewed by then, every lease / 5),
//! and every state change that ends claimed work checks the owner and the fence it was
//! claimed with: work taken over can no longer be finished, settled or sent by its old owner.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::{Liveness, Store};

#[derive(Debug, Default)]
pub(crate) struct Lease {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// When the last heartbeat that reached the store was started (drbot's clock).
    renewed_at: Option<DateTime<Utc>>,
    /// When the current unbroken run of renewals began.
    live_since: Option<DateTime<Utc>>,
    epoch: i64,
}

impl Lease {
    /// A heartbeat started at `at` reached the store. After a lapse (or at the first), the
    /// epoch moves on and liveness counts again from `at`.
    pub(crate) fn renewed(&self, at: DateTime<Utc>, lease: std::time::Duration) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let lapsed = match s.renewed_at {
            None => true,
            Some(last) => at - last >= chrono::Duration::from_std(lease).unwrap_or_default(),
        };
        if lapsed {
            if let Some(last) = s.renewed_at {
                tracing::warn!(
                    silent_for_s = (at - last).num_seconds(),
                    epoch = s.epoch + 1,
                    "this replica's lease had lapsed (the store did not answer): it is renewed under a new epoch, and this replica takes over nothing for one lease"
                );
            }
            s.epoch += 1;
            s.live_since = Some(at);
        }
        if s.renewed_at.is_none_or(|last| at > last) {
            s.renewed_at = Some(at);
        }
    }
}

impl Store {
    fn lease_state<T>(&self, read: impl FnOnce(&State) -> T) -> T {
        read(&self.held.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The fencing token this replica stamps on what it claims now.
    pub fn epoch(&self) -> i64 {
        self.lease_state(|s| s.epoch)
    }

    /// This replica's last heartbeat reached the store less than a lease ago.
    pub fn lease_current(&self) -> bool {
        let now = crate::clock::now();
        let lease = chrono::Duration::from_std(self.lease).unwrap_or_default();
        self.lease_state(|s| s.renewed_at.is_some_and(|at| now - at < lease))
    }

    /// Whether this replica may take over the work of replicas it finds silent: only with a
    /// current lease held unbroken for a whole lease (see the module's note). At start-up on
    /// SQLite (`OnlyMe`) there is nobody else.
    pub fn may_take_over(&self, liveness: Liveness) -> bool {
        if matches!(liveness, Liveness::OnlyMe) {
            return true;
        }
        let now = crate::clock::now();
        let lease = chrono::Duration::from_std(self.lease).unwrap_or_default();
        self.lease_current()
            && self.lease_state(|s| s.live_since.is_some_and(|since| now - since >= lease))
    }

    /// Waits, up to `patience` on drbot's clock, for this replica's lease to be current.
    pub async fn await_lease(&self, patience: std::time::Duration) -> bool {
        let started = crate::clock::now();
        let patience = chrono::Duration::from_std(patience).unwrap_or_default();
        loop {
            if self.lease_current() {
                return true;
            }
            if crate::clock::now() - started >= patience {
                return false;
            }
            crate::clock::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn the_epoch_moves_on_only_after_a_lapse() {
        let lease = std::time::Duration::from_secs(15);
        let l = Lease::default();
        l.renewed(at(0), lease);
        l.renewed(at(3), lease);
        l.renewed(at(6), lease);
        let s = l.state.lock().unwrap();
        assert_eq!((s.epoch, s.live_since), (1, Some(at(0))));
        drop(s);
        // The store stalls for two minutes.
        l.renewed(at(126), lease);
        let s = l.state.lock().unwrap();
        assert_eq!(
            (s.epoch, s.live_since, s.renewed_at),
            (2, Some(at(126)), Some(at(126)))
        );
    }
}
