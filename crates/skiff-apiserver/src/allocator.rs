//! Service ClusterIP and NodePort allocation.
//!
//! The allocation state is a bitmap kept in the store (`/registry/ranges/serviceips`,
//! `/registry/ranges/servicenodeports`, as upstream's RangeAllocation objects)
//! and changed with compare-and-swap, so concurrent creates on one or several
//! API servers never hand out the same address or port.
//!
//! Must not: write Services; handlers apply the allocation to the object and
//! release it when the write fails.

use std::net::Ipv4Addr;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use ipnet::Ipv4Net;
use rand::Rng;
use serde_json::{Value, json};
use skiff_api::status::{ApiError, Cause};
use skiff_store::{Store, StoreError};

/// Errors of one range.
#[derive(Debug, thiserror::Error)]
pub enum AllocError {
    #[error("range is full")]
    Full,
    #[error("provided value is already allocated")]
    Taken,
    #[error("out of range")]
    OutOfRange,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("corrupt range object: {0}")]
    Corrupt(String),
}

/// A bitmap of `size` slots persisted under one store key.
pub struct RangeAllocator {
    store: Arc<dyn Store>,
    key: String,
    range: String,
    size: usize,
    local: tokio::sync::Mutex<()>,
}

impl RangeAllocator {
    /// An allocator of `size` slots stored at `key`; `range` names it in the object.
    pub fn new(store: Arc<dyn Store>, key: &str, range: String, size: usize) -> RangeAllocator {
        RangeAllocator {
            store,
            key: key.to_string(),
            range,
            size,
            local: tokio::sync::Mutex::new(()),
        }
    }

    async fn modify<T>(
        &self,
        mut f: impl FnMut(&mut [u8], usize) -> Result<T, AllocError>,
    ) -> Result<T, AllocError> {
        let _guard = self.local.lock().await;
        loop {
            let (current, _) = self.store.get(&self.key).await?;
            let mut bits = match &current {
                Some(kv) => decode(&kv.value, self.size)?,
                None => vec![0u8; self.size.div_ceil(8)],
            };
            let out = f(&mut bits, self.size)?;
            let value = Bytes::from(
                serde_json::to_vec(&json!({
                    "range": self.range,
                    "data": base64::engine::general_purpose::STANDARD.encode(&bits),
                }))
                .map_err(|e| AllocError::Corrupt(e.to_string()))?,
            );
            let res = match &current {
                Some(kv) => self.store.update(&self.key, value, kv.mod_revision).await,
                None => self.store.create(&self.key, value).await,
            };
            match res {
                Ok(_) => return Ok(out),
                Err(StoreError::Conflict { .. }) | Err(StoreError::AlreadyExists(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Takes a free slot, scanning from a random start as upstream does.
    pub async fn allocate_next(&self) -> Result<usize, AllocError> {
        let start = rand::rng().random_range(0..self.size.max(1));
        self.modify(|bits, size| {
            for i in 0..size {
                let slot = (start + i) % size;
                if !get_bit(bits, slot) {
                    set_bit(bits, slot, true);
                    return Ok(slot);
                }
            }
            Err(AllocError::Full)
        })
        .await
    }

    /// Takes one given slot.
    pub async fn allocate(&self, slot: usize) -> Result<(), AllocError> {
        if slot >= self.size {
            return Err(AllocError::OutOfRange);
        }
        self.modify(|bits, _| {
            if get_bit(bits, slot) {
                return Err(AllocError::Taken);
            }
            set_bit(bits, slot, true);
            Ok(())
        })
        .await
    }

    /// Frees a slot (no-op when it is free or out of range).
    pub async fn release(&self, slot: usize) -> Result<(), AllocError> {
        if slot >= self.size {
            return Ok(());
        }
        self.modify(|bits, _| {
            set_bit(bits, slot, false);
            Ok(())
        })
        .await
    }
}

fn decode(raw: &[u8], size: usize) -> Result<Vec<u8>, AllocError> {
    let v: Value = serde_json::from_slice(raw).map_err(|e| AllocError::Corrupt(e.to_string()))?;
    let data = v["data"].as_str().unwrap_or_default();
    let mut bits = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| AllocError::Corrupt(e.to_string()))?;
    bits.resize(size.div_ceil(8), 0);
    Ok(bits)
}

fn get_bit(bits: &[u8], i: usize) -> bool {
    bits[i / 8] & (1 << (i % 8)) != 0
}

fn set_bit(bits: &mut [u8], i: usize, on: bool) {
    if on {
        bits[i / 8] |= 1 << (i % 8);
    } else {
        bits[i / 8] &= !(1 << (i % 8));
    }
}

/// What one write allocated, to release if the write fails.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub ips: Vec<Ipv4Addr>,
    pub ports: Vec<u16>,
}

/// ClusterIPs from the service CIDR and NodePorts from the node-port range.
pub struct ServiceAllocator {
    cidr: Ipv4Net,
    ports: std::ops::RangeInclusive<u16>,
    ip_range: RangeAllocator,
    port_range: RangeAllocator,
}

impl ServiceAllocator {
    /// Allocators over `cidr` (network and broadcast addresses excluded) and `ports`.
    pub fn new(
        store: Arc<dyn Store>,
        cidr: Ipv4Net,
        ports: std::ops::RangeInclusive<u16>,
    ) -> ServiceAllocator {
        let ip_size = (1usize << (32 - cidr.prefix_len() as usize))
            .saturating_sub(2)
            .max(1);
        let port_size = (*ports.end() as usize + 1).saturating_sub(*ports.start() as usize);
        let ip_range = RangeAllocator::new(
            store.clone(),
            "/registry/ranges/serviceips",
            cidr.to_string(),
            ip_size,
        );
        let port_range = RangeAllocator::new(
            store,
            "/registry/ranges/servicenodeports",
            format!("{}-{}", ports.start(), ports.end()),
            port_size,
        );
        ServiceAllocator {
            cidr,
            ports,
            ip_range,
            port_range,
        }
    }

    /// The first address of the range, reserved for the `default/kubernetes` Service.
    pub fn first_ip(&self) -> Ipv4Addr {
        ip_at(self.cidr, 0)
    }

    fn ip_slot(&self, ip: Ipv4Addr) -> Option<usize> {
        if !self.cidr.contains(&ip) {
            return None;
        }
        let off = u32::from(ip).checked_sub(u32::from(self.cidr.network()))?;
        off.checked_sub(1)
            .map(|o| o as usize)
            .filter(|o| *o < self.ip_range.size)
    }

    /// Allocates the ClusterIP and NodePorts a new Service needs and writes
    /// them into `svc.spec`. 422 Invalid when a requested value is taken or
    /// out of range.
    pub async fn allocate_create(&self, name: &str, svc: &mut Value) -> Result<Allocation, ApiError> {
        let mut alloc = Allocation::default();
        match self.fill(name, svc, None, &mut alloc).await {
            Ok(()) => Ok(alloc),
            Err(e) => {
                self.release(&alloc).await;
                Err(e)
            }
        }
    }

    /// Allocates what an updated Service newly needs (type changed to NodePort,
    /// a port added). Values kept from `old` are not allocated again.
    pub async fn allocate_update(
        &self,
        name: &str,
        svc: &mut Value,
        old: &Value,
    ) -> Result<Allocation, ApiError> {
        let mut alloc = Allocation::default();
        match self.fill(name, svc, Some(old), &mut alloc).await {
            Ok(()) => Ok(alloc),
            Err(e) => {
                self.release(&alloc).await;
                Err(e)
            }
        }
    }

    async fn fill(
        &self,
        name: &str,
        svc: &mut Value,
        old: Option<&Value>,
        alloc: &mut Allocation,
    ) -> Result<(), ApiError> {
        let ty = svc["spec"]["type"].as_str().unwrap_or("ClusterIP").to_string();
        let old_ip = old
            .and_then(|o| o["spec"]["clusterIP"].as_str())
            .filter(|s| !s.is_empty());
        if ty != "ExternalName" {
            let requested = svc["spec"]["clusterIP"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            let ip = match (requested, old_ip) {
                (Some(r), _) if r == "None" => None,
                (Some(r), Some(o)) if r == o => Some(r),
                (None, Some(o)) => Some(o.to_string()),
                (Some(r), _) => Some(self.take_ip(name, &r, alloc).await?),
                (None, None) => {
                    let slot = self
                        .ip_range
                        .allocate_next()
                        .await
                        .map_err(|e| internal(name, e))?;
                    let ip = ip_at(self.cidr, slot);
                    alloc.ips.push(ip);
                    Some(ip.to_string())
                }
            };
            let ip = ip.unwrap_or_else(|| "None".to_string());
            svc["spec"]["clusterIP"] = json!(ip);
            svc["spec"]["clusterIPs"] = json!([ip]);
        }
        if matches!(ty.as_str(), "NodePort" | "LoadBalancer") {
            let old_ports: Vec<u64> = old
                .and_then(|o| o["spec"]["ports"].as_array())
                .map(|a| a.iter().filter_map(|p| p["nodePort"].as_u64()).collect())
                .unwrap_or_default();
            let count = svc["spec"]["ports"].as_array().map_or(0, Vec::len);
            for i in 0..count {
                let requested = svc["spec"]["ports"][i]["nodePort"].as_u64().filter(|p| *p != 0);
                let port = match requested {
                    Some(p) if old_ports.contains(&p) => p as u16,
                    Some(p) => self.take_port(name, i, p, alloc).await?,
                    None => {
                        let slot = self
                            .port_range
                            .allocate_next()
                            .await
                            .map_err(|e| internal(name, e))?;
                        let p = self.ports.start() + slot as u16;
                        alloc.ports.push(p);
                        p
                    }
                };
                svc["spec"]["ports"][i]["nodePort"] = json!(port);
            }
        }
        Ok(())
    }

    async fn take_ip(&self, name: &str, requested: &str, alloc: &mut Allocation) -> Result<String, ApiError> {
        let invalid = |detail: String| {
            ApiError::invalid(
                "Service",
                "",
                name,
                vec![Cause::invalid(
                    "spec.clusterIPs",
                    &json!(format!("[]string{{\"{requested}\"}}")),
                    detail,
                )],
            )
        };
        let ip: Ipv4Addr = requested
            .parse()
            .map_err(|_| invalid("must be a valid IP address".into()))?;
        let slot = self.ip_slot(ip).ok_or_else(|| {
            invalid(format!(
                "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
                self.cidr
            ))
        })?;
        match self.ip_range.allocate(slot).await {
            Ok(()) => {
                alloc.ips.push(ip);
                Ok(ip.to_string())
            }
            Err(AllocError::Taken) => Err(invalid(format!(
                "failed to allocate IP {ip}: provided IP is already allocated"
            ))),
            Err(e) => Err(internal(name, e)),
        }
    }

    async fn take_port(
        &self,
        name: &str,
        i: usize,
        port: u64,
        alloc: &mut Allocation,
    ) -> Result<u16, ApiError> {
        let field = format!("spec.ports[{i}].nodePort");
        let in_range = u16::try_from(port).ok().filter(|p| self.ports.contains(p));
        let Some(p) = in_range else {
            return Err(ApiError::invalid(
                "Service",
                "",
                name,
                vec![Cause::invalid(
                    field,
                    &json!(port),
                    format!(
                        "provided port is not in the valid range. The range of valid ports is {}-{}",
                        self.ports.start(),
                        self.ports.end()
                    ),
                )],
            ));
        };
        match self.port_range.allocate((p - self.ports.start()) as usize).await {
            Ok(()) => {
                alloc.ports.push(p);
                Ok(p)
            }
            Err(AllocError::Taken) => Err(ApiError::invalid(
                "Service",
                "",
                name,
                vec![Cause::invalid(
                    field,
                    &json!(port),
                    "provided port is already allocated",
                )],
            )),
            Err(e) => Err(internal(name, e)),
        }
    }

    /// Reserves a specific address (used for the `kubernetes` Service); ok if already held.
    pub async fn reserve_ip(&self, ip: Ipv4Addr) -> Result<(), AllocError> {
        let slot = self.ip_slot(ip).ok_or(AllocError::OutOfRange)?;
        match self.ip_range.allocate(slot).await {
            Ok(()) | Err(AllocError::Taken) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Frees everything in `alloc` (errors are logged: a leaked slot is better than a failed delete).
    pub async fn release(&self, alloc: &Allocation) {
        for ip in &alloc.ips {
            if let Some(slot) = self.ip_slot(*ip)
                && let Err(e) = self.ip_range.release(slot).await
            {
                tracing::warn!(%ip, error = %e, "failed to release ClusterIP");
            }
        }
        for port in &alloc.ports {
            if self.ports.contains(port)
                && let Err(e) = self
                    .port_range
                    .release((port - self.ports.start()) as usize)
                    .await
            {
                tracing::warn!(port, error = %e, "failed to release NodePort");
            }
        }
    }

    /// What a stored Service holds (to release on delete).
    pub fn held_by(svc: &Value) -> Allocation {
        let mut a = Allocation::default();
        if let Some(ip) = svc["spec"]["clusterIP"].as_str().and_then(|s| s.parse().ok()) {
            a.ips.push(ip);
        }
        if let Some(ports) = svc["spec"]["ports"].as_array() {
            a.ports.extend(
                ports
                    .iter()
                    .filter_map(|p| p["nodePort"].as_u64())
                    .filter_map(|p| u16::try_from(p).ok()),
            );
        }
        a
    }

    /// What `old` held that `new` no longer holds (to release after an update).
    pub fn freed_by_update(old: &Value, new: &Value) -> Allocation {
        let (o, n) = (Self::held_by(old), Self::held_by(new));
        Allocation {
            ips: o.ips.into_iter().filter(|ip| !n.ips.contains(ip)).collect(),
            ports: o.ports.into_iter().filter(|p| !n.ports.contains(p)).collect(),
        }
    }
}

fn ip_at(cidr: Ipv4Net, slot: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(cidr.network()).wrapping_add(1 + slot as u32))
}

fn internal(name: &str, e: AllocError) -> ApiError {
    match e {
        AllocError::Full => ApiError::new(
            500,
            "InternalError",
            format!("Internal error occurred: failed to allocate a serviceIP for {name}: range is full"),
        ),
        other => ApiError::internal(format!("failed to allocate for service {name}: {other}")),
    }
}
