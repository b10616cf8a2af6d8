//! fgs-package
