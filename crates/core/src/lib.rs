//! The job platform's logic, free of any Spin SDK dependency so that it is
//! tested natively. The Spin components in `components/` are thin adapters
//! that implement the [`ports`] with `spin_sdk` and call into this crate.
//!
//! - [`api`]: the HTTP API (routing, authentication, validation, problem bodies).
//! - [`pipeline`]: the durable job pipeline on Redis (submit, claim, complete, fail, sweep, redrive).
//! - [`worker`]: what the worker does with one Redis message.
//! - [`jobs`]: the job types, one module each, registered in one place.
//! - [`blob`]: the Azure Blob Storage REST client (Shared Key and SAS).

#![deny(missing_docs)]

pub mod api;
pub mod blob;
pub mod config;
pub mod error;
pub mod jobs;
pub mod log;
#[cfg(feature = "native")]
pub mod native;
pub mod pipeline;
pub mod ports;
pub mod worker;

pub use error::Error;
