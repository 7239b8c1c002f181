//! fail2ban configuration dialect (see docs).
