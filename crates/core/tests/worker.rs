//! The worker against a real Redis and Azurite.

mod common;
