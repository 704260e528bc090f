//! The engine calls the API makes, in one place.

pub use crate::jobs::{find, names};
pub use crate::pipeline::{
    dead_letters, get, is_valid_id, ping, redrive, submit, sweep, JobRecord, JobStatus, NewJob,
    PipelineError, RedriveOutcome, SubmitOutcome,
};

use crate::config::BlobConfig;
use crate::ports::Http;

/// Read a blob: `None` if it does not exist.
///
/// Stand-in until the Blob client lands.
#[allow(clippy::unused_async)]
pub async fn get_blob(
    http: &impl Http,
    cfg: &BlobConfig,
    path: &str,
) -> Result<Option<(String, Vec<u8>)>, String> {
    let _ = (http, cfg, path);
    Err("blob client not available".into())
}
