//! Use cases: each one reads through the ports, lets the domain decide, and writes atomically.

pub mod catalog;
