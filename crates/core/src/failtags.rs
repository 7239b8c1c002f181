//! fail2ban tag expansion (being written).
