//! The network a server sits on: its own labelled bridge with a /29, a pinned IP, the
//! published port on loopback, and which of the two the pool uses.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};

use bollard::Docker;
use bollard::models::{
    ContainerInspectResponse, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig,
    NetworkCreateRequest,
};

use super::ADDRESS_ENV;
use super::error::{DockerError, docker_error, server_message};
use crate::server::ServerError;

/// Subnets for the per-server networks: /29 blocks of 10.213.0.0/16.
const SUBNET_BASE: u32 = 0x0AD5_0000;
const SUBNET_BLOCKS: u32 = 1 << 13;

/// How the pool reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The container's pinned IP on its own network, port 3306 (no proxy in the path).
    Container,
    /// The pinned published port on 127.0.0.1 (through Docker's port forwarding).
    Published,
}

pub(super) async fn choose_route(docker: &Docker) -> Route {
    match std::env::var(ADDRESS_ENV).ok().as_deref().map(str::trim) {
        Some("published") => return Route::Published,
        Some("container") => return Route::Container,
        _ => {}
    }
    if !cfg!(target_os = "linux") {
        return Route::Published;
    }
    // Rootless Docker keeps container IPs in a namespace the host cannot route to.
    let rootless = docker
        .info()
        .await
        .ok()
        .and_then(|info| info.security_options)
        .is_some_and(|opts| opts.iter().any(|o| o.contains("rootless")));
    if rootless {
        Route::Published
    } else {
        Route::Container
    }
}

/// A labelled bridge network of its own with a free /29 and the container's pinned IP.
pub(super) async fn create_network(
    docker: &Docker,
    name: &str,
    labels: &HashMap<String, String>,
) -> Result<(String, Ipv4Addr), ServerError> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let routes = host_routes();
    // Spread concurrent harnesses over the range; Docker refuses overlapping subnets, so a
    // collision costs one retry.
    let offset = std::process::id().wrapping_mul(2_654_435_761) % SUBNET_BLOCKS;
    let mut last_error = String::new();
    for _ in 0..64 {
        let block = (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % SUBNET_BLOCKS;
        let base = SUBNET_BASE + block * 8;
        // Two prefixes overlap iff they agree on the shorter one; the default route
        // (mask 0) overlaps everything and is not a conflict.
        let overlaps = |&(dest, mask): &(u32, u32)| {
            let shorter = mask & 0xFFFF_FFF8;
            mask != 0 && (base & shorter) == (dest & shorter)
        };
        if routes.iter().any(overlaps) {
            continue;
        }
        let subnet = format!("{}/29", Ipv4Addr::from(base));
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.clone()),
                    gateway: Some(Ipv4Addr::from(base + 1).to_string()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            labels: Some(labels.clone()),
            ..Default::default()
        };
        match docker.create_network(request).await {
            Ok(_) => return Ok((name.to_string(), Ipv4Addr::from(base + 2))),
            Err(e) if server_message(&e).contains("overlap") => {
                last_error = server_message(&e);
            }
            Err(e) => return Err(docker_error(&format!("create network {name}"), e)),
        }
    }
    Err(DockerError::Api {
        what: format!("create network {name}"),
        message: format!("found no free /29 subnet in 10.213.0.0/16 (last: {last_error})"),
    }
    .into())
}

/// testcontainers publishes on every interface; goneaway's servers listen on loopback only.
pub(super) fn publish_on_loopback(host_config: &mut HostConfig) {
    for binding in host_config
        .port_bindings
        .iter_mut()
        .flat_map(|ports| ports.values_mut())
        .flatten()
        .flatten()
    {
        binding.host_ip = Some("127.0.0.1".into());
    }
}

/// The container's address on `network` as Docker reports it; empty when it is not on it.
pub(super) fn ip_on(inspect: &ContainerInspectResponse, network: &str) -> String {
    inspect
        .network_settings
        .as_ref()
        .and_then(|s| s.networks.as_ref())
        .and_then(|n| n.get(network))
        .and_then(|e| e.ip_address.clone())
        .unwrap_or_default()
}

pub(super) fn endpoint(ip: Ipv4Addr) -> EndpointSettings {
    EndpointSettings {
        ipam_config: Some(EndpointIpamConfig {
            ipv4_address: Some(ip.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `(destination, mask)` of the host's IPv4 routes, host byte order (Linux only).
pub(super) fn host_routes() -> Vec<(u32, u32)> {
    let Ok(table) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let dest = u32::from_str_radix(fields.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(fields.get(7)?, 16).ok()?;
            // The kernel prints the network-order word as a native integer.
            let ip = |v: u32| u32::from_be_bytes(v.to_ne_bytes());
            Some((ip(dest), ip(mask)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_ports_bind_loopback_only() {
        use bollard::models::PortBinding;
        let mut config = HostConfig {
            port_bindings: Some(HashMap::from([(
                "3306/tcp".to_string(),
                Some(vec![PortBinding {
                    host_ip: None,
                    host_port: Some("4000".into()),
                }]),
            )])),
            ..Default::default()
        };
        publish_on_loopback(&mut config);
        let binding = &config.port_bindings.unwrap()["3306/tcp"].clone().unwrap()[0];
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(binding.host_port.as_deref(), Some("4000"));
    }

    #[test]
    fn routes_parse() {
        // Whatever the machine has, parsing must not panic and loopback is not listed
        // as 10.213/16.
        for (dest, mask) in host_routes() {
            assert_eq!(dest & mask, dest);
        }
    }
}
