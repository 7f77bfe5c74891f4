//! Upgrading the server package (README, "Installing the packages"): the
//! `entrada` binary migrates an older database once when it opens it, and an
//! older binary refuses a database whose schema is newer than it knows, with a
//! clear error and without touching the file.

use std::path::{Path, PathBuf};
use std::process::Command;

fn entrada() -> Command {
    Command::new(env!("CARGO_BIN_EXE_entrada"))
}

/// The store's migrations, in order (the files the binary embeds).
fn migrations() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/store/migrations");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
}

fn user_version(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn an_older_database_is_migrated_once_and_keeps_its_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("old.db");
    let files = migrations();
    let latest = files.len() as i64;
    assert!(latest >= 2);
    // The database as the previous release left it: every migration but the last.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        for file in &files[..files.len() - 1] {
            conn.execute_batch(&std::fs::read_to_string(file).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        }
        conn.pragma_update(None, "user_version", latest - 1)
            .unwrap();
    }
    let venue = entrada()
        .args(["venue", "add", "--db"])
        .arg(&db)
        .args(["--orq", "1", "--name", "Museo", "--timezone", "UTC"])
        .output()
        .unwrap();
    assert!(venue.status.success(), "{venue:?}");
    assert_eq!(user_version(&db), latest, "migrated to the latest schema");

    // A second start finds nothing to do and the venue made before is there.
    let again = entrada()
        .args(["migrate", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(again.status.success(), "{again:?}");
    assert_eq!(user_version(&db), latest);
    let list = entrada()
        .args(["venue", "list", "--db"])
        .arg(&db)
        .args(["--orq", "1"])
        .output()
        .unwrap();
    assert!(list.status.success(), "{list:?}");
    assert!(String::from_utf8_lossy(&list.stdout).contains("Museo"));
}

#[test]
fn an_older_binary_refuses_a_newer_database() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("new.db");
    let made = entrada()
        .args(["migrate", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let known = user_version(&db);
    // As a newer release would leave it.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "user_version", known + 1).unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let serve = entrada()
        .args(["serve", "--db"])
        .arg(&db)
        .args(["--listen", "127.0.0.1:0", "--ui-dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(serve.status.code(), Some(1), "{serve:?}");
    let err = String::from_utf8_lossy(&serve.stderr);
    assert!(
        err.contains(&format!(
            "the database schema is version {}, newer than this program knows ({known})",
            known + 1
        )),
        "{err}"
    );
    assert_eq!(user_version(&db), known + 1, "left as it was");
    assert_eq!(std::fs::read(&db).unwrap(), before, "file unchanged");
}
