//! API keys on requests: `Authorization: Bearer KEY` or `X-API-Key: KEY`. No key or an unknown
//! or revoked one: 401; a key without the route's scope: 403.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use visage_gallery::{ApiKey, Scope};

use crate::error::ApiError;
use crate::state::AppState;

fn secret(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim());
    }
    let auth = headers.get("authorization")?.to_str().ok()?.trim();
    let (scheme, rest) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The request's key, checked for `scope`.
pub async fn require(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<ApiKey, ApiError> {
    let secret = secret(headers)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing API key: send Authorization: Bearer KEY (make one with visage keys create)",
            )
        })?
        .to_string();
    let lookup = Arc::clone(state);
    let key = tokio::task::spawn_blocking(move || lookup.gallery().key_for_secret(&secret))
        .await
        .map_err(|e| ApiError::internal(format!("key check failed: {e}")))??;
    let key = key.filter(|k| k.revoked_at.is_none()).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unknown or revoked API key",
        )
    })?;
    if !key.allows(scope) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "the key {:?} lacks the {} scope this route needs",
                key.name,
                scope.as_str()
            ),
        ));
    }
    Ok(key)
}
