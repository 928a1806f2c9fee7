//! paved: a self-hosted platform that speaks the AWS Proton API.
//!
//! - [`domain`]: the pure rules (names, templates, bundles, schemas) and the error type.
//! - [`ports`]: the small traits paved needs from the outside (storage, bundles).
//! - [`adapters`]: their implementations on AWS and in memory.
//! - [`app`]: the use cases, composed of ports.
//! - [`api`]: the Proton wire protocol (awsJson1_0) as one axum router.
//! - [`config`]: configuration and wiring.

pub mod adapters;
pub mod api;
pub mod app;
#[cfg(feature = "aws")]
pub mod config;
pub mod domain;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod ports;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
