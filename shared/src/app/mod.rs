//! Use cases: each one reads through the ports, lets the domain decide, and writes atomically.

pub mod access;
pub mod account;
pub mod authoring;
pub mod catalog;
pub mod components;
pub mod corpus;
pub mod deploy;
pub mod deployments;
pub mod environments;
pub mod error;
pub mod fleet;
pub mod pushes;
pub mod services;
pub mod tags;
pub mod tasks;
pub mod webhook;

#[cfg(test)]
mod tests;

pub use error::{Error, Result};
