//! The engine calls the API makes, in one place.

pub use crate::jobs::{find, names};
pub use crate::pipeline::{
    backlog, dead_letters, get, is_valid_id, ping, redrive, redrive_all, submit_limited, sweep,
    wait_for_replicas, JobRecord, JobStatus, NewJob, PipelineError, RedriveOutcome, SubmitOutcome,
};

use crate::blob::{BlobClient, BlobError};
use crate::config::BlobConfig;
use crate::ports::Http;

/// Read the blob `name` of the results container: `None` if it does not exist.
pub async fn get_blob(
    http: &impl Http,
    cfg: &BlobConfig,
    name: &str,
) -> Result<Option<(String, Vec<u8>)>, BlobError> {
    BlobClient::new(cfg, http).get(name).await
}
