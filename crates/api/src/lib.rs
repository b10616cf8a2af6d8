//! fgs-api
