//! Date detection (being written).
