//! fgs-store
