//! A supervisor at a gate checks everyone out of the venue (issue 15):
//! online only, through the server (`POST /api/sync/checkout`), which holds
//! every gate's passages; the exits reach this gate's replica by the sync
//! round that follows.

use std::time::Duration;

use crate::client::{blocking, read_json, SyncEngine, SyncError};
use entrada_domain::closing::Checkout;
use entrada_domain::OperatorId;

/// How long the supervisor waits for the server.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);

impl SyncEngine {
    /// Everyone inside the venue checked out now by the server, on behalf
    /// of `supervisor` (signed in here with their PIN; the server checks
    /// their role); then a sync round brings the exits here.
    pub async fn checkout_venue(&self, supervisor: OperatorId) -> Result<Checkout, SyncError> {
        let store = self.store.clone();
        let pairing = blocking(move || store.pairing())
            .await?
            .ok_or(SyncError::NotPaired)?;
        let (base, http) = self.http_for(&pairing.server_url)?;
        let response = http
            .post(format!("{base}/api/sync/checkout"))
            .bearer_auth(&pairing.token)
            .timeout(CHECKOUT_TIMEOUT)
            .json(&serde_json::json!({ "operator_id": supervisor.0 }))
            .send()
            .await
            .map_err(crate::client::request_error)?;
        let done = read_json::<Checkout>(response).await?;
        if let Err(e) = self.round(|_, _| {}).await {
            tracing::warn!(error = %e, "checkout done; its exits arrive with the next sync");
        }
        Ok(done)
    }
}
