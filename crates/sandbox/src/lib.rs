//! fgs-sandbox
