//! `PUID`/`PGID`, as in Framerr's image: a process started as root (a
//! container's default) becomes that user before it does anything, so that
//! every file it creates (backups, documents, lock files, restored files)
//! is theirs and Framerr, running as the same user, can read and write
//! them. Framerr's defaults are 0:0, root: nothing changes then.

use std::path::Path;

use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};

/// What `PUID` and `PGID` ask for, when they ask for someone other than
/// root; an unreadable value is an error, never silently root.
pub fn wanted(var: impl Fn(&str) -> Option<String>) -> Result<Option<(u32, u32)>, String> {
    let id = |name: &str| match var(name) {
        None => Ok(0),
        Some(v) if v.trim().is_empty() => Ok(0),
        Some(v) => v.trim().parse::<u32>().map_err(|_| format!("{name} must be a number, not {v:?}")),
    };
    let (uid, gid) = (id("PUID")?, id("PGID")?);
    Ok((uid != 0 || gid != 0).then_some((uid, gid)))
}

/// Becomes `PUID`:`PGID` when this process runs as root and they ask for
/// another user, first giving them the backups folder (created if
/// missing) and what this program keeps in it. Returns who it became.
pub fn become_configured_user(backups: &Path) -> Result<Option<(u32, u32)>, String> {
    let Some((uid, gid)) = wanted(|name| std::env::var(name).ok())? else { return Ok(None) };
    if !Uid::effective().is_root() {
        // Not root: already someone; nothing can be changed, and the
        // files are that user's.
        return Ok(None);
    }
    std::fs::create_dir_all(backups).map_err(|e| format!("cannot create {}: {e}", backups.display()))?;
    let give = |path: &Path| std::os::unix::fs::lchown(path, Some(uid), Some(gid));
    give(backups).map_err(|e| format!("cannot give {} to {uid}:{gid}: {e}", backups.display()))?;
    if let Ok(entries) = std::fs::read_dir(backups) {
        for entry in entries.flatten() {
            let _ = give(&entry.path());
        }
    }
    let fail = |what: &str, e: nix::Error| format!("cannot become {uid}:{gid} ({what}): {e}");
    setgroups(&[Gid::from_raw(gid)]).map_err(|e| fail("groups", e))?;
    setgid(Gid::from_raw(gid)).map_err(|e| fail("group", e))?;
    setuid(Uid::from_raw(uid)).map_err(|e| fail("user", e))?;
    Ok(Some((uid, gid)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_unless_asked_and_numbers_only() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        assert_eq!(wanted(env(&[])), Ok(None));
        assert_eq!(wanted(env(&[("PUID", "0"), ("PGID", "0")])), Ok(None));
        assert_eq!(wanted(env(&[("PUID", "99"), ("PGID", "100")])), Ok(Some((99, 100))));
        assert_eq!(wanted(env(&[("PUID", " 1000 ")])), Ok(Some((1000, 0))));
        assert!(wanted(env(&[("PUID", "nobody")])).is_err());
    }
}
