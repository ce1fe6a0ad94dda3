//! The last verification of each destination, and verifying now.

use axum::Json;
use axum::extract::State;

use backup_domain::verification::{self, Verification};

use crate::AppState;

pub(crate) async fn last(State(state): State<AppState>) -> Json<Vec<Verification>> {
    Json(verification::read(state.backups.creator.store.as_ref()).await)
}

/// Verifies the newest backup of every destination now (the page's
/// "Verify now"); answers when every check is done.
pub(crate) async fn verify_now(State(state): State<AppState>) -> Json<Vec<Verification>> {
    Json(state.verifier.verify_newest().await)
}
