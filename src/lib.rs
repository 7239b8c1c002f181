//! banhammer glue.
