//! Visage's door in production: an HTTP service over the face pipeline and the gallery.
//!
//! - JSON API under `/api/v1` ([`api`]): verify, identify, enroll, list/show/rename/remove
//!   people, health; its OpenAPI document at `/api/v1/openapi.json`.
//! - API keys ([`auth`]): identify/verify need the `identify` scope, people need `manage`.
//! - Inference on a bounded pool ([`pool`]): a full queue answers 429.
//! - Limits: request body size (413), request time (503), image pixels (413).
//! - Prometheus metrics at `/metrics` ([`metrics`]); the web page at `/` ([`web`]).
//!
//! Every error is JSON: `{"error": {"code": "...", "message": "..."}}` ([`error`]).

#![warn(missing_docs)]

pub mod api;
pub mod auth;
pub mod error;
pub mod metrics;
pub mod pool;
pub mod state;
pub mod upload;
pub mod web;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

pub use error::ApiError;
pub use state::{AppState, ServerConfig};

/// The OpenAPI 3.1 document of the API, as served.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// Every route of the service, with its state and limits.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.max_body_bytes;
    let api = Router::new()
        .route("/health", get(api::health))
        .route("/openapi.json", get(openapi))
        .route("/verify", post(api::verify))
        .route("/identify", post(api::identify))
        .route("/people", post(api::enroll).get(api::list_people))
        .route(
            "/people/{name}",
            get(api::show_person)
                .patch(api::rename_person)
                .delete(api::remove_person),
        );
    Router::new()
        .nest("/api/v1", api)
        .route("/metrics", get(metrics_text))
        .route("/", get(web::index))
        .route("/app.js", get(web::script))
        .route("/style.css", get(web::style))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), limits))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), record))
        .with_state(state)
}

/// Serves `state` on `listener` until `shutdown` completes, then finishes the requests in
/// flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(&state.gauges()),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// A declared body over the limit is refused before it is read; the whole request (reading
/// the body included) must finish within the time limit.
async fn limits(
    State(state): State<Arc<AppState>>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let limit = state.config.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return ApiError::too_large(limit).into_response();
    }
    let timeout = state.config.request_timeout;
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the request took longer than {} s", timeout.as_secs_f64()),
        )
        .into_response(),
    }
}

/// Counts every answer in the metrics, by route pattern and status.
async fn record(
    State(state): State<Arc<AppState>>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    state.metrics.record(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
