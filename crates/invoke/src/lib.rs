//! fgs-invoke
