//! `skiff image`: load image tarballs (docker-archive or OCI layout) into a
//! containerd, for machines that cannot pull (`skiff image import`), and
//! list what the node's runtime has (`skiff image ls`, over CRI). Wires
//! skiff-images and the agent's CRI client; holds no logic of its own
//! beyond choosing the socket and wording errors.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

/// containerd's own default socket.
const SYSTEM_SOCKET: &str = "/run/containerd/containerd.sock";

/// `skiff image ...`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Load docker-archive or OCI-layout tarballs into containerd.
    Import(ImportArgs),
    /// List the images the container runtime has (CRI ListImages).
    #[command(alias = "list")]
    Ls(Target),
}

/// Which containerd to talk to.
#[derive(Debug, Args)]
struct Target {
    /// containerd's socket. Default: the skiff-owned containerd of
    /// --data-dir if it runs, else /run/containerd/containerd.sock.
    #[arg(long, value_name = "SOCK", env = "CONTAINERD_ADDRESS")]
    address: Option<PathBuf>,
    /// The data directory of `skiff server` / `skiff agent`.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/skiff")]
    data_dir: PathBuf,
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// Image tarballs (`docker save` or OCI image layout).
    #[arg(required = true, value_name = "FILE.tar")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    target: Target,
    /// containerd namespace; the CRI plugin (and so the agent) uses k8s.io.
    #[arg(long, short = 'n', default_value = "k8s.io")]
    namespace: String,
    /// The `ctr` binary that does the import.
    #[arg(long, default_value = "ctr", hide = true)]
    ctr: String,
}

/// Runs `skiff image ...`.
pub async fn run(args: ImageArgs) -> anyhow::Result<()> {
    match args.command {
        ImageCommand::Import(import) => run_import(import).await,
        ImageCommand::Ls(target) => run_ls(target).await,
    }
}

impl Target {
    /// The socket, which must accept connections.
    async fn socket(&self) -> anyhow::Result<PathBuf> {
        let socket = match &self.address {
            Some(address) => {
                let raw = address.to_string_lossy();
                PathBuf::from(raw.strip_prefix("unix://").unwrap_or(&raw))
            }
            None => {
                let owned = self.data_dir.join("containerd").join("containerd.sock");
                if tokio::net::UnixStream::connect(&owned).await.is_ok() {
                    return Ok(owned);
                }
                PathBuf::from(SYSTEM_SOCKET)
            }
        };
        if let Err(e) = tokio::net::UnixStream::connect(&socket).await {
            bail!(
                "containerd is not reachable at {}: {e}\n(is containerd running? `skiff server` starts one \
                 under --data-dir; name another with --address)",
                socket.display()
            );
        }
        Ok(socket)
    }
}

async fn run_import(args: ImportArgs) -> anyhow::Result<()> {
    for file in &args.files {
        check_tarball(file)?;
    }
    let socket = args.target.socket().await?;
    for file in &args.files {
        let (ctr, ns, path) = (args.ctr.clone(), args.namespace.clone(), file.clone());
        let socket = socket.clone();
        let names =
            tokio::task::spawn_blocking(move || skiff_images::import_tarball_into(&ctr, &socket, &ns, &path))
                .await
                .context("import task")?
                .map_err(|e| import_error(file, e))?;
        if names.is_empty() {
            bail!("{}: the archive holds no named image", file.display());
        }
        for name in names {
            println!("{name}");
        }
    }
    Ok(())
}

/// The file must exist, be a regular file and start like a tar archive.
fn check_tarball(file: &Path) -> anyhow::Result<()> {
    use std::io::Read;
    let mut f = std::fs::File::open(file).with_context(|| format!("{}", file.display()))?;
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        bail!("{}: not a regular file", file.display());
    }
    let mut header = [0u8; 512];
    let read = f.read(&mut header).unwrap_or(0);
    let tar = read == header.len() && &header[257..262] == b"ustar";
    let gzip = read >= 2 && header[..2] == [0x1f, 0x8b];
    if !tar && !gzip {
        bail!(
            "{}: not a tar archive (expected a docker-archive or OCI-layout image tarball)",
            file.display()
        );
    }
    Ok(())
}

fn import_error(file: &Path, err: skiff_images::ImportError) -> anyhow::Error {
    match err {
        skiff_images::ImportError::Spawn(e) => {
            anyhow::anyhow!("running ctr: {e} (ctr comes with containerd: apt-get install containerd)")
        }
        skiff_images::ImportError::Failed { stderr, .. } => anyhow::anyhow!(
            "{}: not a loadable image archive (docker-archive or OCI layout): {}",
            file.display(),
            stderr.trim_start_matches("ctr: ")
        ),
        other => anyhow::Error::new(other),
    }
}

async fn run_ls(target: Target) -> anyhow::Result<()> {
    let socket = target.socket().await?;
    let cri = skiff_agent::CriClient::connect(&socket).await?;
    let images = cri
        .image
        .clone()
        .list_images(k8s_cri::v1::ListImagesRequest { filter: None })
        .await
        .context("listing images")?
        .into_inner()
        .images;
    let mut rows: Vec<[String; 4]> = Vec::new();
    for image in &images {
        let id = image
            .id
            .trim_start_matches("sha256:")
            .chars()
            .take(13)
            .collect::<String>();
        let size = human_size(image.size);
        if image.repo_tags.is_empty() {
            rows.push(["<none>".into(), "<none>".into(), id, size]);
            continue;
        }
        for tag in &image.repo_tags {
            let (repo, tag) = split_tag(tag);
            rows.push([repo.to_string(), tag.to_string(), id.clone(), size.clone()]);
        }
    }
    rows.sort();
    print!("{}", table(["IMAGE", "TAG", "IMAGE ID", "SIZE"], &rows));
    Ok(())
}

/// `repo:tag` split at the tag's colon (not a registry port's).
fn split_tag(reference: &str) -> (&str, &str) {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (reference, "<none>"),
    }
}

/// Sizes as crictl prints them (`1.23MB`).
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes}B");
    }
    let number = format!("{value:.3}");
    format!(
        "{}{}",
        number.trim_end_matches('0').trim_end_matches('.'),
        UNITS[unit]
    )
}

fn table(header: [&str; 4], rows: &[[String; 4]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 4]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}   ", w = widths[i]));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header);
    for row in rows {
        line([&row[0], &row[1], &row[2], &row[3]]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_at_the_last_colon_outside_the_registry() {
        assert_eq!(
            split_tag("docker.io/library/busybox:latest"),
            ("docker.io/library/busybox", "latest")
        );
        assert_eq!(split_tag("localhost:5000/app"), ("localhost:5000/app", "<none>"));
        assert_eq!(split_tag("localhost:5000/app:v1"), ("localhost:5000/app", "v1"));
    }

    #[test]
    fn sizes_read_like_crictl() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1_234_567), "1.235MB");
        assert_eq!(human_size(2_000_000), "2MB");
    }
}
