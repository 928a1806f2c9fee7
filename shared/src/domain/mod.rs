//! The pure rules of paved: values, templates, bundles, schemas. No I/O.

pub mod access;
pub mod account;
pub mod adoption;
pub mod bundle;
pub mod component;
pub mod drift;
pub mod environment;
pub mod error;
pub mod names;
pub mod pipeline;
pub mod provisioning;
pub mod push;
pub mod render;
pub mod roles;
pub mod schema;
pub mod service;
pub mod spec;
pub mod template;
pub mod upgrade;
pub mod yaml;

pub use error::{Error, Result};
