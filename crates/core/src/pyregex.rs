//! Python regex translation (being written).
