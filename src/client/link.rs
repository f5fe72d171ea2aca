//! The connection to a peer, held in one place that several users share:
//! peer mode's console and its poller take turns on one connection to an
//! `ssh://` peer (one ssh process, one session on the other side), each
//! holding it for one command or one poll, and whoever finds it gone
//! opens the next.

use std::sync::{Arc, Mutex, MutexGuard};

use super::control::Client;

/// A shared slot for the connection to a peer; None: not connected.
#[derive(Clone, Default)]
pub struct Link(Arc<Mutex<Option<Client>>>);

impl Link {
    /// The slot, for one command or one poll. A user that panicked while
    /// holding it left a connection in an unknown state: it is dropped.
    pub fn lock(&self) -> MutexGuard<'_, Option<Client>> {
        self.0.lock().unwrap_or_else(|poisoned| {
            let mut slot = poisoned.into_inner();
            *slot = None;
            slot
        })
    }
}
