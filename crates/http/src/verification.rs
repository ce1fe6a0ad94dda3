//! The last verification of each destination, and verifying now.

use axum::Json;
use axum::extract::State;

use backup_domain::verification::{self, Verification};

use crate::{ApiError, ApiResult, AppState};

pub(crate) async fn last(State(state): State<AppState>) -> Json<Vec<Verification>> {
    Json(verification::read(state.backups.creator.store.as_ref()).await)
}

/// Verifies the newest backup of every destination now (the page's
/// "Verify now"); answers when every check is done. The checks run in a
/// task of their own: a client that goes away (the page closed) drops only
/// the answer, never the work, which finishes and records its results.
pub(crate) async fn verify_now(State(state): State<AppState>) -> ApiResult<Json<Vec<Verification>>> {
    let verifier = state.verifier.clone();
    let done = tokio::spawn(async move { verifier.verify_newest().await });
    done.await.map(Json).map_err(|e| ApiError::internal("Verifying", e))
}
