//! Log-line matching (being written).
