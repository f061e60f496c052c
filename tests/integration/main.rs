//! Every integration test in one binary, a module per area (the shape cargo-nextest and
//! turmoil use). Each test binary links sqlx, testcontainers, axum and tokio; one binary
//! instead of one per file is most of what a fresh `cargo test` saves.
//!
//! Three tests stay binaries of their own: `bad_suites` (the suite corpus: small and
//! independent of servers), and `docker_errors` and `docker_published`, which set
//! process-wide environment variables before anything else starts.

#[path = "../common/mod.rs"]
mod common;

mod classify;
mod cli;
mod clients;
mod diff;
mod docker_cli;
mod docker_network_cut;
mod docker_server;
mod docker_suites;
mod explore;
mod external;
mod honest;
mod junit;
mod network;
mod process_server;
mod proxy_api;
mod proxy_bench;
mod proxy_client;
mod proxy_forwarding;
mod suites;
mod user_pool;
