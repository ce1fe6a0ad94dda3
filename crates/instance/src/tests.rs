//! Staging, the journaled swap and recovery, on a real folder: a crash at
//! every point of the swap, recovered by the next holder of the lock,
//! leaves the instance wholly old or wholly new and nothing of ours behind.

use std::io;

use backup_domain::restore::{DeclaredEntry, EntryError};

use super::*;

/// An archive in memory.
struct Entries {
    declared: Vec<DeclaredEntry>,
    data: Vec<Vec<u8>>,
}

impl Entries {
    fn new(files: &[(&str, &[u8])]) -> Entries {
        let mut all: Vec<(String, Vec<u8>)> = files.iter().map(|(n, d)| ((*n).to_owned(), d.to_vec())).collect();
        let manifest = Manifest::new(
            backup_domain::BackupKind::Manual,
            time::OffsetDateTime::UNIX_EPOCH,
            backup_domain::Encryption::Plaintext,
            Default::default(),
        );
        all.push((MANIFEST_ENTRY.to_owned(), manifest.to_json().into_bytes()));
        Entries {
            declared: all
                .iter()
                .map(|(name, d)| DeclaredEntry {
                    name: name.clone(),
                    size: d.len() as u64,
                    compressed_size: d.len() as u64,
                    is_symlink: false,
                    is_dir: false,
                })
                .collect(),
            data: all.into_iter().map(|(_, d)| d).collect(),
        }
    }
}

impl ArchiveEntries for Entries {
    fn entries(&self) -> &[DeclaredEntry] {
        &self.declared
    }
    fn archive_size(&self) -> u64 {
        self.data.iter().map(|d| d.len() as u64).sum()
    }
    fn copy_entry(&mut self, index: usize, out: &mut dyn io::Write) -> Result<u64, EntryError> {
        out.write_all(&self.data[index]).map_err(EntryError::Write)?;
        Ok(self.data[index].len() as u64)
    }
}

struct World {
    _dir: tempfile::TempDir,
    layout: Layout,
}

/// An old instance: database, its WAL, icons, a cache.
fn old_world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let layout = Layout {
        db: data.join("framerr.db"),
        assets: AssetPaths::under(&data),
        caches: vec![data.join("cache/images")],
        scratch: data.join("backups"),
    };
    std::fs::create_dir_all(layout.assets.get(AssetFolder::CustomIcons)).unwrap();
    std::fs::create_dir_all(layout.assets.get(AssetFolder::Favicon)).unwrap();
    std::fs::create_dir_all(&layout.caches[0]).unwrap();
    std::fs::write(&layout.db, b"old database").unwrap();
    std::fs::write(layout.db_side("-wal"), b"old wal").unwrap();
    std::fs::write(layout.assets.get(AssetFolder::CustomIcons).join("old.png"), b"old icon").unwrap();
    std::fs::write(layout.assets.get(AssetFolder::Favicon).join("favicon.ico"), b"kept").unwrap();
    std::fs::write(layout.caches[0].join("c"), b"cache").unwrap();
    World { _dir: dir, layout }
}

fn new_archive() -> Box<dyn ArchiveEntries> {
    Box::new(Entries::new(&[("framerr.db", b"new database"), ("custom-icons/new.png", b"new icon")]))
}

/// "old" or "new" by the database's content, after checking that the
/// assets are of the same state (and the caches went with the old one).
fn assets_match(layout: &Layout) -> &'static str {
    let icons = layout.assets.get(AssetFolder::CustomIcons);
    // A folder the archive had no files for is never touched.
    assert_eq!(std::fs::read(layout.assets.get(AssetFolder::Favicon).join("favicon.ico")).unwrap(), b"kept");
    match std::fs::read(&layout.db).unwrap().as_slice() {
        b"old database" => {
            assert!(icons.join("old.png").exists() && !icons.join("new.png").exists(), "old database, new icons");
            "old"
        }
        b"new database" => {
            assert!(icons.join("new.png").exists() && !icons.join("old.png").exists(), "new database, old icons");
            assert!(!layout.caches[0].exists(), "caches were not cleared");
            "new"
        }
        other => panic!("database is {:?}", String::from_utf8_lossy(other)),
    }
}

/// "old" or "new" after a swap by renames, checking the instance is not a
/// mix: the old WAL stays with the old database, never beside the new.
fn state(layout: &Layout) -> &'static str {
    let state = assets_match(layout);
    match state {
        "old" => assert_eq!(std::fs::read(layout.db_side("-wal")).unwrap(), b"old wal", "the old WAL was lost"),
        _ => assert!(!layout.db_side("-wal").exists(), "a stale WAL beside the new database"),
    }
    state
}

fn ours_left(layout: &Layout) -> Vec<String> {
    let mut left = Vec::new();
    for dir in layout.working_dirs() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if name.starts_with(".framerr") && name != LOCK && !name.starts_with(OWNER_PREFIX) {
                left.push(name);
            }
        }
    }
    left
}

fn stage(instance: &FsInstance) -> Box<StagedFiles> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let staged = rt.block_on(instance.stage(new_archive(), RestoreLimits::default())).unwrap();
    staged.into_any().downcast::<StagedFiles>().unwrap()
}

/// Stages and commits, the process "dying" at `point`: nothing of its own
/// cleanup runs.
fn crash_at(instance: &FsInstance, point: &str) {
    let staged = stage(instance);
    let result = commit(&staged, instance.writer.as_deref(), &|p| p == point);
    std::mem::forget(staged);
    assert!(result.is_err(), "{point}: no crash happened");
}

/// The next holder of the lock recovers.
fn recover_after(instance: &FsInstance, point: &str) {
    let (_lock, recovered) = instance.lock().acquire_blocking(Duration::ZERO).unwrap();
    assert!(recovered.is_some(), "{point}: nothing to recover");
}

#[test]
fn a_crash_at_every_point_of_the_swap_recovers_to_old_or_new() {
    let mut points = vec!["restore:journal-written".to_owned(), "restore:committed".to_owned()];
    for i in 0..4 {
        points.push(format!("restore:moved-old-{i}"));
        points.push(format!("restore:moved-new-{i}"));
    }
    let mut outcomes = Vec::new();
    for point in &points {
        let world = old_world();
        let instance = FsInstance::new(world.layout.clone());
        crash_at(&instance, point);
        // Another process opening the database meanwhile finds one.
        assert!(world.layout.db.is_file(), "{point}: the database path is missing mid-swap");
        recover_after(&instance, point);
        let outcome = state(&world.layout);
        assert!(world.layout.db.is_file(), "{point}: the database path is missing after recovery");
        assert_eq!(ours_left(&world.layout), Vec::<String>::new(), "{point}");
        outcomes.push((point.clone(), outcome));
    }
    let of = |p: &str| outcomes.iter().find(|(point, _)| point == p).map(|(_, o)| *o);
    assert_eq!(of("restore:journal-written"), Some("old"));
    assert_eq!(of("restore:moved-new-3"), Some("old"), "before the commit point is rolled back");
    assert_eq!(of("restore:committed"), Some("new"), "after the commit point is finished");
}

#[test]
fn an_uncrashed_swap_is_whole_and_a_dropped_staging_leaves_nothing() {
    let world = old_world();
    let instance = FsInstance::new(world.layout.clone());
    let staged = stage(&instance);
    assert_eq!(staged.assets, 1);
    commit(&staged, None, &|_| false).unwrap();
    drop(staged);
    assert_eq!(state(&world.layout), "new");
    assert!(ours_left(&world.layout).is_empty(), "{:?}", ours_left(&world.layout));

    let world = old_world();
    let instance = FsInstance::new(world.layout.clone());
    drop(stage(&instance));
    assert_eq!(state(&world.layout), "old");
    assert!(ours_left(&world.layout).is_empty(), "{:?}", ours_left(&world.layout));
}

#[test]
fn staging_refuses_before_writing_anything() {
    let world = old_world();
    let instance = FsInstance::new(world.layout.clone());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for (files, want) in [
        (vec![("custom-icons/x.png", &b"x"[..])], "missing database"),
        (vec![("framerr.db", &b"x"[..]), ("custom-icons/../x", &b"x"[..])], "unsafe path"),
    ] {
        let err = rt.block_on(instance.stage(Box::new(Entries::new(&files)), RestoreLimits::default())).err().unwrap();
        assert!(err.to_string().to_lowercase().contains(want), "{err}");
        assert_eq!(state(&world.layout), "old");
        assert!(ours_left(&world.layout).is_empty(), "{:?}", ours_left(&world.layout));
    }
}

/// Stands in for SQLite writing into a database another process has open:
/// the file's content changes in place (same inode), and the mark is
/// recorded with it.
struct InPlace {
    db: PathBuf,
    mark: PathBuf,
    fail: bool,
}

impl LiveWriter for InPlace {
    fn opened_elsewhere(&self) -> Result<bool, backup_domain::DbError> {
        Ok(true)
    }
    fn write(&self, staged: &Path, mark: &str) -> Result<(), backup_domain::DbError> {
        if self.fail {
            return Err(backup_domain::DbError::Full(self.db.display().to_string()));
        }
        let content = std::fs::read(staged).unwrap();
        let mut live = std::fs::OpenOptions::new().write(true).truncate(false).open(&self.db).unwrap();
        live.set_len(0).unwrap();
        live.write_all(&content).unwrap();
        std::fs::write(&self.mark, mark).unwrap();
        Ok(())
    }
    fn holds(&self, mark: &str) -> Result<bool, backup_domain::DbError> {
        Ok(std::fs::read_to_string(&self.mark).is_ok_and(|m| m == mark))
    }
    fn unmark(&self, mark: &str) -> Result<(), backup_domain::DbError> {
        if self.holds(mark)? {
            std::fs::write(&self.mark, "").unwrap();
        }
        Ok(())
    }
}

fn in_place(world: &World, fail: bool) -> FsInstance {
    let writer = InPlace { db: world.layout.db.clone(), mark: world._dir.path().join("mark"), fail };
    FsInstance::new(world.layout.clone()).with_live_writer(Arc::new(writer))
}

/// "old" or "new" for a database written in place: its file and side files
/// were never replaced, and the assets match it.
fn state_in_place(layout: &Layout, db_id: FileId) -> &'static str {
    assert_eq!(FileId::of(&layout.db), Some(db_id), "the live database file was replaced");
    assert_eq!(std::fs::read(layout.db_side("-wal")).unwrap(), b"old wal", "the WAL was moved or replaced");
    assets_match(layout)
}

#[test]
fn beside_another_process_the_database_is_written_in_place_and_a_crash_anywhere_recovers_by_its_mark() {
    let mut points = vec![
        "restore:journal-written".to_owned(),
        "restore:database-written".to_owned(),
        "restore:committed".to_owned(),
    ];
    // One asset folder: the only item the journal moves.
    points.push("restore:moved-old-0".to_owned());
    points.push("restore:moved-new-0".to_owned());
    let mut outcomes = Vec::new();
    for point in &points {
        let world = old_world();
        let db_id = FileId::of(&world.layout.db).unwrap();
        let instance = in_place(&world, false);
        crash_at(&instance, point);
        recover_after(&instance, point);
        let outcome = state_in_place(&world.layout, db_id);
        let mark = std::fs::read_to_string(world._dir.path().join("mark")).unwrap_or_default();
        assert!(mark.is_empty(), "{point}: the mark outlived the recovery that finished the restore");
        assert_eq!(ours_left(&world.layout), Vec::<String>::new(), "{point}");
        outcomes.push((point.clone(), outcome));
    }
    let of = |p: &str| outcomes.iter().find(|(point, _)| point == p).map(|(_, o)| *o);
    assert_eq!(of("restore:journal-written"), Some("old"));
    assert_eq!(of("restore:moved-new-0"), Some("old"), "assets moved, database not written: rolled back");
    assert_eq!(of("restore:database-written"), Some("new"), "the database holds the mark: rolled forward");
    assert_eq!(of("restore:committed"), Some("new"));

    // Undisturbed, and failing: the database is never replaced.
    let world = old_world();
    let db_id = FileId::of(&world.layout.db).unwrap();
    let instance = in_place(&world, false);
    let staged = stage(&instance);
    assert_eq!(commit(&staged, instance.writer.as_deref(), &|_| false).unwrap(), DatabaseSwap::WrittenInPlace);
    drop(staged);
    assert_eq!(state_in_place(&world.layout, db_id), "new");
    assert_eq!(std::fs::read_to_string(world._dir.path().join("mark")).unwrap(), "", "the mark was not taken away");
    assert!(ours_left(&world.layout).is_empty(), "{:?}", ours_left(&world.layout));

    let world = old_world();
    let db_id = FileId::of(&world.layout.db).unwrap();
    let instance = in_place(&world, true);
    let staged = stage(&instance);
    let err = commit(&staged, instance.writer.as_deref(), &|_| false).unwrap_err();
    assert!(matches!(err, StageError::Io { full: true, .. }), "{err}");
    drop(staged);
    assert_eq!(state_in_place(&world.layout, db_id), "old");
    assert!(ours_left(&world.layout).is_empty(), "{:?}", ours_left(&world.layout));
}

#[test]
fn an_interrupted_in_place_restore_is_left_alone_while_the_database_cannot_say() {
    struct Unreadable;
    impl LiveWriter for Unreadable {
        fn opened_elsewhere(&self) -> Result<bool, backup_domain::DbError> {
            Ok(true)
        }
        fn write(&self, _: &Path, _: &str) -> Result<(), backup_domain::DbError> {
            Ok(())
        }
        fn holds(&self, _: &str) -> Result<bool, backup_domain::DbError> {
            Err(backup_domain::DbError::Other("locked".into()))
        }
        fn unmark(&self, _: &str) -> Result<(), backup_domain::DbError> {
            Ok(())
        }
    }
    let world = old_world();
    let instance = FsInstance::new(world.layout.clone()).with_live_writer(Arc::new(Unreadable));
    crash_at(&instance, "restore:moved-new-0");
    let err = instance.lock().acquire_blocking(Duration::ZERO).unwrap_err();
    assert!(err.to_string().contains("cannot be finished or rolled back yet"), "{err}");
    assert!(world.layout.journal().exists(), "the journal is kept for a later recovery");
}
