//! The Toxiproxy 2.x HTTP API over the registry (axum).

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use super::registry::{ApiError, Registry};

/// The version `/version` reports: the Toxiproxy API level this server follows, with
/// build metadata saying who serves it (semver ignores build metadata when comparing).
pub const API_VERSION: &str = concat!("2.12.0+goneaway.", env!("CARGO_PKG_VERSION"));

type Reg = State<Arc<Registry>>;

fn json_response(status: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == StatusCode::NO_CONTENT {
        return status.into_response();
    }
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, &self.to_json())
    }
}

fn reply(result: Result<(u16, Value), ApiError>) -> Response {
    match result {
        Ok((status, body)) => json_response(status, &body),
        Err(e) => e.into_response(),
    }
}

pub(crate) fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/reset", post(reset))
        .route("/proxies", get(list).post(create))
        .route("/populate", post(populate))
        .route(
            "/proxies/{proxy}",
            get(show).post(update).patch(update).delete(delete),
        )
        .route("/proxies/{proxy}/toxics", get(toxics).post(add_toxic))
        .route(
            "/proxies/{proxy}/toxics/{toxic}",
            get(show_toxic)
                .post(update_toxic)
                .patch(update_toxic)
                .delete(delete_toxic),
        )
        // goneaway's extension: what a toxic has done (Toxiproxy answers 404).
        .route("/proxies/{proxy}/toxics/{toxic}/stats", get(toxic_stats))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(stop_browsers))
        .with_state(registry)
}

/// Toxiproxy refuses browsers, so that a web page cannot drive a local proxy.
async fn stop_browsers(request: Request, next: Next) -> Response {
    let is_browser = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("Mozilla/"));
    if is_browser {
        return (StatusCode::FORBIDDEN, "User agent not allowed\n").into_response();
    }
    next.run(request).await
}

async fn not_found() -> Response {
    ApiError::new(404, "not found").into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::new(405, "method not allowed").into_response()
}

async fn version() -> Response {
    let mut resp = Response::new(Body::from(format!("{{\"version\": \"{API_VERSION}\"}}\n")));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    resp
}

async fn reset(State(reg): Reg) -> Response {
    reply(reg.reset().await)
}

async fn list(State(reg): Reg) -> Response {
    reply(reg.list().await)
}

async fn create(State(reg): Reg, body: Bytes) -> Response {
    reply(reg.create(&body).await)
}

async fn populate(State(reg): Reg, body: Bytes) -> Response {
    let (status, body) = reg.populate(&body).await;
    json_response(status, &body)
}

async fn show(State(reg): Reg, Path(proxy): Path<String>) -> Response {
    reply(reg.show(&proxy).await)
}

async fn update(State(reg): Reg, Path(proxy): Path<String>, body: Bytes) -> Response {
    reply(reg.update(&proxy, &body).await)
}

async fn delete(State(reg): Reg, Path(proxy): Path<String>) -> Response {
    reply(reg.delete(&proxy).await)
}

async fn toxics(State(reg): Reg, Path(proxy): Path<String>) -> Response {
    reply(reg.toxics(&proxy).await)
}

async fn add_toxic(State(reg): Reg, Path(proxy): Path<String>, body: Bytes) -> Response {
    reply(reg.add_toxic(&proxy, &body).await)
}

async fn show_toxic(State(reg): Reg, Path((proxy, toxic)): Path<(String, String)>) -> Response {
    reply(reg.show_toxic(&proxy, &toxic).await)
}

async fn toxic_stats(State(reg): Reg, Path((proxy, toxic)): Path<(String, String)>) -> Response {
    reply(reg.toxic_stats(&proxy, &toxic).await)
}

async fn update_toxic(
    State(reg): Reg,
    Path((proxy, toxic)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    reply(reg.update_toxic(&proxy, &toxic, &body).await)
}

async fn delete_toxic(State(reg): Reg, Path((proxy, toxic)): Path<(String, String)>) -> Response {
    reply(reg.delete_toxic(&proxy, &toxic).await)
}
