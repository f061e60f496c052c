//! Every integration test in one binary, a module per area (the shape cargo-nextest and
//! turmoil use). Each test binary links sqlx, testcontainers, axum and tokio; one binary
//! instead of one per file is most of what a fresh `cargo test` saves.
//!
//! The suite corpus (`bad_suites`) stays a small binary of its own: it needs no server.
//! Tests that need process-wide environment variables run in a child process of this
//! binary (`common::in_own_process`).

#[path = "../common/mod.rs"]
mod common;

mod adapters;
mod classify;
mod cli;
mod clients;
mod contract;
mod diff;
mod docker_cli;
mod docker_errors;
mod docker_network_cut;
mod docker_published;
mod docker_server;
mod docker_suites;
mod explore;
mod external;
mod honest;
mod html;
mod junit;
#[cfg(feature = "mysql-async")]
mod mysql_async_errors;
mod network;
mod process_server;
mod progress;
mod proxy_api;
mod proxy_bench;
mod proxy_client;
mod proxy_forwarding;
mod replica;
mod suites;
mod user_pool;
