//! Where the gate keeps its database when `--db` does not say.
//!
//! In order: `--db FILE` (or `ENTRADA_DB`); `--data-dir DIR` (or
//! `ENTRADA_DATA_DIR`, which the kiosk service sets to its state folder,
//! `/var/lib/entrada-gate`) → `DIR/gate.db`; the XDG per-user data folder
//! `$XDG_DATA_HOME/entrada/gate.db`, where `$XDG_DATA_HOME` defaults to
//! `$HOME/.local/share`. Never the current folder: an app started from a menu
//! or a service has no meaningful one.
//!
//! [`resolve`] is a pure function of those inputs; `main` reads them from
//! the flags and the environment and creates the folder.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The database's file name inside a data folder.
pub const DB_FILE: &str = "gate.db";
/// The app's folder inside `$XDG_DATA_HOME`.
pub const APP_DIR: &str = "entrada";

/// What the location is resolved from.
#[derive(Debug, Default, Clone)]
pub struct DataDirInputs {
    /// `--db` / `ENTRADA_DB`.
    pub db: Option<PathBuf>,
    /// `--data-dir` / `ENTRADA_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `$XDG_DATA_HOME`.
    pub xdg_data_home: Option<OsString>,
    /// `$HOME`.
    pub home: Option<OsString>,
    /// The database an earlier version left in the current folder
    /// (`entrada-gate.db`), when one is there.
    pub earlier_default: Option<PathBuf>,
}

/// Where versions before the data folder kept the database: the current folder.
pub const EARLIER_DEFAULT: &str = "entrada-gate.db";

/// Where the database goes and why (the app logs it at start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbLocation {
    pub path: PathBuf,
    pub source: DbSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbSource {
    /// `--db` / `ENTRADA_DB`.
    Flag,
    /// `--data-dir` / `ENTRADA_DATA_DIR` (a kiosk service's state folder).
    DataDir,
    /// `$XDG_DATA_HOME/entrada`.
    XdgDataHome,
    /// `$HOME/.local/share/entrada` (no usable `$XDG_DATA_HOME`).
    Home,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DataDirError {
    #[error(
        "no place for the gate's database: HOME is not set (or not an absolute path); \
         give --db FILE or --data-dir DIR (ENTRADA_DB / ENTRADA_DATA_DIR)"
    )]
    NoHome,
    /// An upgraded gate would otherwise start empty and unpaired, leaving its
    /// unsent scans in the old file.
    #[error(
        "{0} is the database an earlier version kept in the current folder (it may hold \
         unsent scans); start with --db {0} to keep using it, or move it to the data folder \
         (e.g. ~/.local/share/entrada/gate.db) and start again"
    )]
    EarlierDatabase(String),
}

/// Absolute, non-empty paths only: the XDG base directory specification says
/// a relative `$XDG_DATA_HOME` is invalid and must be ignored, and a relative
/// `$HOME` would again mean the current folder.
fn absolute(value: &Option<OsString>) -> Option<&Path> {
    value.as_deref().map(Path::new).filter(|p| p.is_absolute())
}

/// The database file for these inputs (see the module's documentation).
pub fn resolve(inputs: &DataDirInputs) -> Result<DbLocation, DataDirError> {
    let at = |path: PathBuf, source| Ok(DbLocation { path, source });
    if let Some(db) = &inputs.db {
        return at(db.clone(), DbSource::Flag);
    }
    if let Some(earlier) = &inputs.earlier_default {
        return Err(DataDirError::EarlierDatabase(earlier.display().to_string()));
    }
    if let Some(dir) = inputs
        .data_dir
        .as_ref()
        .filter(|d| !d.as_os_str().is_empty())
    {
        return at(dir.join(DB_FILE), DbSource::DataDir);
    }
    if let Some(xdg) = absolute(&inputs.xdg_data_home) {
        return at(xdg.join(APP_DIR).join(DB_FILE), DbSource::XdgDataHome);
    }
    if let Some(home) = absolute(&inputs.home) {
        return at(
            home.join(".local/share").join(APP_DIR).join(DB_FILE),
            DbSource::Home,
        );
    }
    Err(DataDirError::NoHome)
}

/// Creates the database's folder if missing (owner-only when this creates it,
/// as the database files are).
pub fn create_parent(path: &Path) -> std::io::Result<()> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    if parent.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }
    fn p(s: &str) -> Option<PathBuf> {
        Some(PathBuf::from(s))
    }

    #[test]
    fn case_table() {
        use DbSource::*;
        // (db, data_dir, XDG_DATA_HOME, HOME) → expected path and source
        #[allow(clippy::type_complexity)]
        #[rustfmt::skip]
        let cases: &[(
            Option<PathBuf>,
            Option<PathBuf>,
            Option<OsString>,
            Option<OsString>,
            Result<(&str, DbSource), DataDirError>,
        )] = &[
            // --db wins over everything, relative or not
            (p("gate-a.db"), p("/var/lib/entrada-gate"), os("/x"), os("/home/ana"), Ok(("gate-a.db", Flag))),
            (p("/srv/g.db"), None, None, None, Ok(("/srv/g.db", Flag))),
            // the service's folder wins over the user's
            (None, p("/var/lib/entrada-gate"), os("/x"), os("/home/ana"), Ok(("/var/lib/entrada-gate/gate.db", DataDir))),
            (None, p("/var/lib/entrada-gate"), None, None, Ok(("/var/lib/entrada-gate/gate.db", DataDir))),
            // an empty ENTRADA_DATA_DIR= is as if unset
            (None, p(""), None, os("/home/ana"), Ok(("/home/ana/.local/share/entrada/gate.db", Home))),
            // XDG_DATA_HOME when absolute
            (None, None, os("/home/ana/data"), os("/home/ana"), Ok(("/home/ana/data/entrada/gate.db", XdgDataHome))),
            // a relative or empty XDG_DATA_HOME is ignored (XDG spec)
            (None, None, os("data"), os("/home/ana"), Ok(("/home/ana/.local/share/entrada/gate.db", Home))),
            (None, None, os(""), os("/home/ana"), Ok(("/home/ana/.local/share/entrada/gate.db", Home))),
            (None, None, None, os("/home/ana"), Ok(("/home/ana/.local/share/entrada/gate.db", Home))),
            // nowhere to go: an error, never the current folder
            (None, None, None, None, Err(DataDirError::NoHome)),
            (None, None, None, os(""), Err(DataDirError::NoHome)),
            (None, None, os("rel"), os("rel-home"), Err(DataDirError::NoHome)),
        ];
        for (db, data_dir, xdg, home, want) in cases {
            let inputs = DataDirInputs {
                db: db.clone(),
                data_dir: data_dir.clone(),
                xdg_data_home: xdg.clone(),
                home: home.clone(),
                earlier_default: None,
            };
            let got = resolve(&inputs);
            let want = want.clone().map(|(path, source)| DbLocation {
                path: PathBuf::from(path),
                source,
            });
            assert_eq!(got, want, "{inputs:?}");
        }
    }

    /// An upgraded gate started without --db finds the file an earlier
    /// version left in the current folder: it stops and says what to do,
    /// rather than start empty and strand the unsent scans; --db still wins.
    #[test]
    fn an_earlier_database_in_the_current_folder_is_not_abandoned() {
        let earlier = DataDirInputs {
            home: os("/home/ana"),
            earlier_default: p(EARLIER_DEFAULT),
            ..DataDirInputs::default()
        };
        assert_eq!(
            resolve(&earlier),
            Err(DataDirError::EarlierDatabase(EARLIER_DEFAULT.into()))
        );
        let chosen = DataDirInputs {
            db: p(EARLIER_DEFAULT),
            ..earlier.clone()
        };
        assert_eq!(resolve(&chosen).unwrap().source, DbSource::Flag);
        let service = DataDirInputs {
            data_dir: p("/var/lib/entrada-gate"),
            ..earlier
        };
        assert!(matches!(
            resolve(&service),
            Err(DataDirError::EarlierDatabase(_))
        ));
    }

    #[test]
    fn creates_the_folder_owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("share/entrada/gate.db");
        create_parent(&db).unwrap();
        assert!(db.parent().unwrap().is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(db.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        // again: an existing folder is fine
        create_parent(&db).unwrap();
        create_parent(Path::new("gate.db")).unwrap();
    }
}
