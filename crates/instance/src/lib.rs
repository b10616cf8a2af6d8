//! fgs-instance
