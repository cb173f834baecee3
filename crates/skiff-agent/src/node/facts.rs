//! Facts about the machine the node reports: memory, CPUs, disk, kernel,
//! OS image and machine identifiers. Read-only: only files under /proc,
//! /etc and /sys, and statvfs of the data dir.

use std::path::Path;

/// What the node tells the API about the machine it runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineFacts {
    /// Logical CPUs.
    pub cpus: usize,
    /// `MemTotal` of /proc/meminfo, bytes.
    pub memory_bytes: u64,
    /// Size of the file system holding the data dir, bytes.
    pub disk_bytes: u64,
    /// `uname -r`.
    pub kernel_version: String,
    /// PRETTY_NAME of /etc/os-release.
    pub os_image: String,
    /// /etc/machine-id.
    pub machine_id: String,
    /// /proc/sys/kernel/random/boot_id.
    pub boot_id: String,
    /// /sys/class/dmi/id/product_uuid when readable, else the machine id.
    pub system_uuid: String,
    /// Go-style architecture name (`amd64`, `arm64`).
    pub arch: String,
}

impl MachineFacts {
    /// Reads the facts of this machine; missing files give empty values.
    pub fn read(data_dir: &Path) -> MachineFacts {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let machine_id = read("/etc/machine-id");
        let uuid = read("/sys/class/dmi/id/product_uuid");
        MachineFacts {
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            memory_bytes: mem_total(&read("/proc/meminfo")).unwrap_or(0),
            disk_bytes: disk_size(data_dir),
            kernel_version: rustix::system::uname().release().to_string_lossy().into_owned(),
            os_image: pretty_name(&read("/etc/os-release")).unwrap_or_else(|| "Linux".to_string()),
            system_uuid: if uuid.is_empty() { machine_id.clone() } else { uuid },
            machine_id,
            boot_id: read("/proc/sys/kernel/random/boot_id"),
            arch: go_arch(std::env::consts::ARCH).to_string(),
        }
    }
}

/// Bytes of the file system holding `dir` (or its nearest existing parent).
fn disk_size(dir: &Path) -> u64 {
    let mut at = Some(dir);
    while let Some(p) = at {
        if let Ok(st) = rustix::fs::statvfs(p) {
            return st.f_blocks.saturating_mul(st.f_frsize);
        }
        at = p.parent();
    }
    0
}

/// `MemTotal` in bytes from the text of /proc/meminfo.
pub fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// PRETTY_NAME from the text of /etc/os-release, unquoted.
pub fn pretty_name(os_release: &str) -> Option<String> {
    let value = os_release.lines().find_map(|l| l.strip_prefix("PRETTY_NAME="))?;
    Some(value.trim_matches('"').to_string())
}

/// The Go (and Kubernetes) name of a Rust target architecture.
pub fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_and_os_release_are_parsed() {
        assert_eq!(
            mem_total("MemTotal:       24000 kB\nMemFree: 1 kB\n"),
            Some(24000 * 1024)
        );
        assert_eq!(mem_total("nothing"), None);
        let os = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(pretty_name(os).as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(go_arch("x86_64"), "amd64");
    }

    #[test]
    fn this_machine_has_memory_cpus_and_disk() {
        let f = MachineFacts::read(Path::new("/nonexistent/dir"));
        assert!(f.memory_bytes > 0 && f.cpus > 0 && f.disk_bytes > 0);
        assert!(!f.kernel_version.is_empty());
    }
}
