//! A limit shared beyond one pool: the same function version's pools on the other nodes of a
//! cluster count against the same `max_instance_num`. A pool with a [`Gate`] asks it for a
//! [`Ticket`] before each cold start, and gives the ticket back only after the instance has
//! stopped, so that the instances holding tickets are never more than the limit at any moment.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// How often a caller waiting on a full shared limit asks again: a place freed on another node
/// wakes nothing here.
pub const GATE_RETRY: Duration = Duration::from_millis(100);

/// A place for one instance in a shared limit. Dropping it gives the place back (the value it
/// wraps does that in its own `Drop`); the pool drops it once its instance has stopped.
pub struct Ticket {
    /// The place's id in the shared count: [`Gate::past_limit`] names places by it.
    id: i64,
    _place: Box<dyn Send + Sync>,
}

impl Ticket {
    /// A ticket for place `id`, given back when `place` is dropped.
    pub fn new(id: i64, place: impl Send + Sync + 'static) -> Ticket {
        Ticket {
            id,
            _place: Box::new(place),
        }
    }

    pub fn id(&self) -> i64 {
        self.id
    }
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ticket")
    }
}

/// What a gate answered.
#[derive(Debug)]
pub enum Admission {
    Granted(Ticket),
    /// The shared limit is reached: wait for a place, or be served where the instances run
    /// (the other nodes holding places, as the gate names them: their advertised URLs).
    Full(Vec<String>),
    /// No place can be had now (the shared count cannot be reached, or this node fenced
    /// itself); the message says why.
    Refused(String),
}

/// The shared count of a pool's instances.
pub trait Gate: Send + Sync + 'static {
    /// Asks for a place for one more instance under `limit`.
    fn admit(&self, limit: u32) -> Pin<Box<dyn Future<Output = Admission> + Send + '_>>;
    /// The ids of this node's places that a limit of `limit` no longer covers: the places of
    /// every live node, in claim order, keep the first `limit`; this node's ones ranked at or
    /// past it are listed. Each node reads the same order, so each gives back its own share
    /// without asking the others. `Err` says why the places could not be read.
    fn past_limit(
        &self,
        limit: u32,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<i64>, String>> + Send + '_>>;
}
