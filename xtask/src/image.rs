//! `cargo xtask image`: the container image, built here as CI builds it.
//!
//! The binary is compiled on this machine (`--profile dist`: release,
//! stripped); `container/rootfs.sh` gathers what the image holds around it
//! from this Debian machine's own files; and the root Dockerfile's runtime
//! stage (everything after its `# runtime` line, with the rootfs copied
//! from the build context instead of an earlier stage) is built with
//! podman, tagged `localhost/framerr-backup:dev`. So CI's image differs
//! from a user's only in where the binary was compiled.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Result, cargo, run};

/// The tag CI's image gets.
pub(crate) const TAG: &str = "localhost/framerr-backup:dev";
/// The most the image may weigh.
const MAX_BYTES: u64 = 25 * 1000 * 1000;

/// podman as it runs on these machines (see docs/DEPLOY.md): cgroupfs,
/// runc, no default ulimits.
pub(crate) fn podman(root: &Path) -> Command {
    let mut cmd = Command::new("podman");
    cmd.env("CONTAINERS_CONF", root.join("container/containers.conf")).args([
        "--cgroup-manager",
        "cgroupfs",
        "--runtime",
        "runc",
    ]);
    cmd
}

/// The runtime stage of the root Dockerfile, reading its files from the
/// build context's `rootfs/`.
pub(crate) fn runtime_stage(dockerfile: &str) -> Result<String> {
    let (_, stage) = dockerfile.split_once("\n# runtime\n").ok_or("the Dockerfile has no `# runtime` line")?;
    let from_stage = "COPY --from=rootfs /rootfs/ /";
    if !stage.contains(from_stage) {
        return Err(format!("the Dockerfile's runtime stage does not `{from_stage}`"));
    }
    Ok(stage.replace(from_stage, "COPY rootfs/ /"))
}

pub(crate) fn build() -> Result<PathBuf> {
    let root = crate::tools::root();
    run(cargo().args(["build", "--profile", "dist", "-p", "backup-cli", "--bin", "framerr-backup"]))?;
    let context = root.join("target/image");
    let _ = std::fs::remove_dir_all(&context);
    let bin_dir = context.join("rootfs/usr/local/bin");
    std::fs::create_dir_all(&bin_dir).map_err(|e| e.to_string())?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    std::fs::copy(target.join("dist/framerr-backup"), bin_dir.join("framerr-backup")).map_err(|e| e.to_string())?;
    run(Command::new("sh").arg(root.join("container/rootfs.sh")).arg(context.join("rootfs")))?;
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).map_err(|e| e.to_string())?;
    std::fs::write(context.join("Containerfile"), runtime_stage(&dockerfile)?).map_err(|e| e.to_string())?;
    // Docker's format keeps the HEALTHCHECK (OCI's has no such field).
    run(podman(&root)
        .args(["build", "--format", "docker", "--tag", TAG, "--file"])
        .arg(context.join("Containerfile"))
        .arg(&context))?;
    let size = Command::new("podman")
        .env("CONTAINERS_CONF", root.join("container/containers.conf"))
        .args(["image", "inspect", "--format", "{{.Size}}", TAG])
        .output()
        .map_err(|e| e.to_string())?;
    let bytes: u64 =
        String::from_utf8_lossy(&size.stdout).trim().parse().map_err(|_| "cannot read the image's size")?;
    println!("{TAG}: {:.1} MB", bytes as f64 / 1e6);
    if bytes > MAX_BYTES {
        return Err(format!("the image is {bytes} bytes, over {MAX_BYTES}"));
    }
    Ok(context)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_runtime_stage_is_the_dockerfiles_own() {
        let dockerfile = std::fs::read_to_string(crate::tools::root().join("Dockerfile")).unwrap_or_default();
        let stage = super::runtime_stage(&dockerfile).unwrap_or_default();
        assert!(stage.starts_with("FROM scratch\nCOPY rootfs/ /\n"), "{stage}");
        assert!(stage.contains("HEALTHCHECK") && stage.contains("CMD [\"serve\"]"), "{stage}");
    }
}
