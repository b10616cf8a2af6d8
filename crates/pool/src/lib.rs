//! fgs-pool
