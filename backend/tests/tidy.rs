//! Tidy: the crate boundaries of the workspace, checked over the source text
//! (after rust-analyzer's `tidy.rs`). `cargo test` fails, naming file:line,
//! when
//!
//! - SQL (a `rusqlite` path, or a string literal holding `SELECT … FROM`,
//!   `INSERT INTO`, `UPDATE … SET`, `DELETE FROM`, `CREATE TABLE`, …) appears
//!   in a crate's `src/` outside the store engines (`crates/store`,
//!   `crates/store-pg`);
//! - `crates/domain/src` reads the clock or randomness (`Utc::now`,
//!   `Local::now`, `SystemTime::now`, `Instant::now`, `Uuid::now_v7`,
//!   `Uuid::new_v4`) or does I/O (`std::fs`, `std::net`, `std::env`,
//!   `std::process`, `tokio`, `reqwest`, `axum`, `rusqlite`);
//! - `crates/domain/Cargo.toml` depends on a crate outside a short allowlist of
//!   pure crates, turns on chrono's `clock` or uuid's id-minting features, or
//!   makes utoipa a non-optional dependency.
//!
//! Scanned: every `.rs` file under `crates/*/src`, `backend/src` and
//! `src-tauri/src`, comments excluded. Not scanned: `tests/` and `benches/`
//! directories, whose set-up legitimately opens the database file to plant or
//! tamper with rows (backend/tests, backend/benches).
//!
//! The detector is plain functions over text with their own case table below,
//! so a planted violation is shown to be caught.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// SQL outside `crates/store`.
    SqlOutsideStore,
    /// A clock or randomness read in `crates/domain`.
    ClockInDomain,
    /// I/O in `crates/domain`'s source.
    IoInDomain,
    /// An OpenAPI derive or attribute in `crates/domain` outside the `openapi` feature.
    OpenApiInDomain,
    /// `crates/domain/Cargo.toml` gained a dependency or feature it must not have.
    DomainDependency,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    rule: Rule,
    what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.rule {
            Rule::SqlOutsideStore => "SQL outside crates/store (move it into a store service)",
            Rule::ClockInDomain => {
                "clock/randomness read in crates/domain (take the time or id as a parameter)"
            }
            Rule::IoInDomain => "I/O in crates/domain (domain is pure)",
            Rule::OpenApiInDomain => {
                "utoipa in crates/domain outside #[cfg_attr(feature = \"openapi\", ...)]"
            }
            Rule::DomainDependency => "crates/domain dependency outside the pure allowlist",
        };
        write!(f, "{}:{}: {why}: {}", self.file, self.line, self.what)
    }
}

/// A source file split into code (strings and comments blanked out) and its
/// string literals, each with the 1-based line it starts on.
struct Lexed {
    code: String,
    strings: Vec<(usize, String)>,
}

/// Just enough of Rust's lexer to tell code, comments and string literals
/// apart: line and (nested) block comments, "…" and b"…" with escapes,
/// r#"…"# raw strings, and char literals such as '"' (not lifetimes).
fn lex(src: &str) -> Lexed {
    let c: Vec<char> = src.chars().collect();
    let mut code = String::with_capacity(src.len());
    let mut strings = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Keep newlines in `code` so its line numbers match the file's.
    let blank = |ch: char, code: &mut String, line: &mut usize| {
        if ch == '\n' {
            *line += 1;
            code.push('\n');
        } else {
            code.push(' ');
        }
    };
    while i < c.len() {
        let at = |k: usize| c.get(i + k).copied().unwrap_or('\0');
        if at(0) == '/' && at(1) == '/' {
            while i < c.len() && c[i] != '\n' {
                code.push(' ');
                i += 1;
            }
        } else if at(0) == '/' && at(1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    code.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    code.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(c[i], &mut code, &mut line);
                    i += 1;
                }
            }
        } else if (at(0) == 'r' || (at(0) == 'b' && at(1) == 'r'))
            && !is_ident(if i == 0 { ' ' } else { c[i - 1] })
            && {
                let p = if at(0) == 'b' { 2 } else { 1 };
                let mut k = p;
                while at(k) == '#' {
                    k += 1;
                }
                at(k) == '"'
            }
        {
            // Raw string: r"…", r#"…"#, br"…".
            let start = line;
            let p = if at(0) == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while at(p + hashes) == '#' {
                hashes += 1;
            }
            for _ in 0..p + hashes + 1 {
                code.push(' ');
            }
            i += p + hashes + 1;
            let mut text = String::new();
            while i < c.len() {
                if c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')) {
                    for _ in 0..hashes + 1 {
                        code.push(' ');
                    }
                    i += hashes + 1;
                    break;
                }
                text.push(c[i]);
                blank(c[i], &mut code, &mut line);
                i += 1;
            }
            strings.push((start, text));
        } else if at(0) == '"'
            || (at(0) == 'b' && at(1) == '"' && !is_ident(if i == 0 { ' ' } else { c[i - 1] }))
        {
            let start = line;
            let p = if at(0) == 'b' { 2 } else { 1 };
            for _ in 0..p {
                code.push(' ');
            }
            i += p;
            let mut text = String::new();
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' && i + 1 < c.len() {
                    text.push(c[i]);
                    code.push(' ');
                    i += 1;
                }
                text.push(c[i]);
                blank(c[i], &mut code, &mut line);
                i += 1;
            }
            code.push(' ');
            i += 1;
            strings.push((start, text));
        } else if at(0) == '\''
            && (at(2) == '\'' || (at(1) == '\\' && (at(3) == '\'' || at(2) == 'u')))
        {
            // A char literal ('"', '\'', '\u{22}'); a lifetime has no closing quote.
            code.push(' ');
            i += 1;
            while i < c.len() && c[i] != '\'' {
                if c[i] == '\\' {
                    code.push(' ');
                    i += 1;
                }
                code.push(' ');
                i += 1;
            }
            code.push(' ');
            i += 1;
        } else {
            if c[i] == '\n' {
                line += 1;
            }
            code.push(c[i]);
            i += 1;
        }
    }
    Lexed { code, strings }
}

fn is_ident(ch: char) -> bool {
    ch.is_alphanumeric() || ch == '_'
}

/// Byte offsets where `word` occurs in `text` as a whole path segment or
/// identifier (not inside a longer identifier).
fn find_word(text: &str, word: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(k) = text[from..].find(word) {
        let at = from + k;
        let before = text[..at].chars().next_back().is_some_and(is_ident);
        let after = text[at + word.len()..].chars().next().is_some_and(is_ident);
        if !before && !after {
            out.push(at);
        }
        from = at + word.len();
    }
    out
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// Where a string literal holds SQL: the offset of the statement's keyword.
/// Keywords are upper case, as every statement in crates/store writes them;
/// English prose ("select a slot", "update the app") does not match. `DROP
/// TABLE` is left out: the validators' case tables feed it as hostile input
/// ("x'; DROP TABLE tickets;--"), which is data, not a statement.
fn sql_in(text: &str) -> Option<usize> {
    let norm: String = text
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    let has = |w: &str| find_word(&norm, w).first().copied();
    let pairs: [(&str, &str); 7] = [
        ("SELECT", "FROM"),
        ("INSERT", "INTO"),
        ("UPDATE", "SET"),
        ("DELETE", "FROM"),
        ("CREATE", "TABLE"),
        ("CREATE", "INDEX"),
        ("ALTER", "TABLE"),
    ];
    for (first, then) in pairs {
        if let Some(a) = has(first) {
            if !find_word(&norm[a..], then).is_empty() {
                return Some(a);
            }
        }
    }
    has("PRAGMA")
}

/// The rules for one `.rs` file; `path` is relative to the workspace root,
/// with `/` separators.
fn check_source(path: &str, src: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    let lexed = lex(src);
    let mut flag = |line: usize, rule: Rule, what: &str| {
        out.push(Violation {
            file: path.to_string(),
            line,
            rule,
            what: what.to_string(),
        })
    };
    // The store engines: SQLite's (`crates/store`) and PostgreSQL's (`crates/store-pg`).
    let in_store = path.starts_with("crates/store/") || path.starts_with("crates/store-pg/");
    let in_domain = path.starts_with("crates/domain/");

    if !in_store {
        for at in find_word(&lexed.code, "rusqlite") {
            flag(line_of(&lexed.code, at), Rule::SqlOutsideStore, "rusqlite");
        }
        for (start, text) in &lexed.strings {
            if let Some(at) = sql_in(text) {
                let snippet: String = text[at..]
                    .split_whitespace()
                    .take(4)
                    .collect::<Vec<_>>()
                    .join(" ");
                flag(
                    start + text[..at].matches('\n').count(),
                    Rule::SqlOutsideStore,
                    &format!("\"{snippet}…\""),
                );
            }
        }
    }
    if in_domain {
        let clock = [
            "Utc::now",
            "Local::now",
            "SystemTime::now",
            "Instant::now",
            "now_v7",
            "new_v4",
            "now_v1",
            "now_v6",
        ];
        for word in clock {
            for at in find_word(&lexed.code, word) {
                flag(line_of(&lexed.code, at), Rule::ClockInDomain, word);
            }
        }
        let io = [
            "std::fs",
            "std::net",
            "std::env",
            "std::process",
            "tokio",
            "reqwest",
            "axum",
            "rusqlite",
        ];
        for word in io {
            for at in find_word(&lexed.code, word) {
                flag(line_of(&lexed.code, at), Rule::IoInDomain, word);
            }
        }
        for (at, word) in openapi_outside_feature(src, &lexed.code) {
            flag(line_of(&lexed.code, at), Rule::OpenApiInDomain, word);
        }
    }
    out
}

/// Byte offsets (in `code`) of `utoipa`, `ToSchema` and `schema(...)` that
/// are not inside a `cfg_attr(...)` whose text names `feature = "openapi"`.
/// `code` is `src` with strings and comments blanked, char for char, so a
/// char index means the same place in both.
fn openapi_outside_feature(src: &str, code: &str) -> Vec<(usize, &'static str)> {
    let src: Vec<char> = src.chars().collect();
    let chars: Vec<char> = code.chars().collect();
    let byte_of = |ci: usize| chars[..ci].iter().map(|c| c.len_utf8()).sum::<usize>();
    let char_of = |bi: usize| code[..bi].chars().count();
    // Char ranges of every cfg_attr(...) gated on the openapi feature.
    let mut gated = Vec::new();
    for at in find_word(code, "cfg_attr") {
        let mut i = char_of(at) + "cfg_attr".len();
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if chars.get(i) != Some(&'(') {
            continue;
        }
        let (start, mut depth) = (i, 0);
        while i < chars.len() {
            match chars[i] {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            i += 1;
            if depth == 0 {
                break;
            }
        }
        let text: String = src[start..i].iter().collect();
        let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.starts_with("( feature = \"openapi\",")
            || text.starts_with("(feature = \"openapi\",")
        {
            gated.push(start..i);
        }
    }
    let mut out = Vec::new();
    for word in ["utoipa", "ToSchema", "schema"] {
        for at in find_word(code, word) {
            let ci = char_of(at);
            if word == "schema" && !code[at + word.len()..].trim_start().starts_with('(') {
                continue;
            }
            if !gated.iter().any(|r| r.contains(&ci)) {
                // `utoipa::ToSchema` is one finding, not two.
                let prev = ci.checked_sub(2).map(&byte_of);
                if word == "ToSchema" && prev.is_some_and(|p| code[p..at].ends_with("::")) {
                    continue;
                }
                out.push((at, word));
            }
        }
    }
    out.sort();
    out
}

/// The crates `entrada-domain` may depend on: data, serde, errors, time
/// arithmetic and pure crypto. No I/O, no database, no runtime, no HTTP.
const DOMAIN_ALLOWED: &[&str] = &[
    "base64",
    "chrono",
    "chrono-tz",
    "ed25519-dalek",
    "serde",
    "serde_json",
    "sha2",
    "thiserror",
    // Schema derives only, each optional: OpenAPI for the server, TypeScript
    // for the customer page's bindings.
    "ts-rs",
    "utoipa",
    "uuid",
];

/// Features that would let domain read the clock or randomness.
const DOMAIN_FORBIDDEN_FEATURES: &[(&str, &[&str])] = &[
    ("chrono", &["clock", "now", "default"]),
    ("uuid", &["v1", "v4", "v6", "v7", "fast-rng", "rng"]),
];

/// The rules for `crates/domain/Cargo.toml`. A dependency written
/// `name.workspace = true` inherits the features of its line in
/// `[workspace.dependencies]` of `workspace_toml`, so those count too.
fn check_domain_manifest(path: &str, toml: &str, workspace_toml: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    let workspace_line = |name: &str| -> String {
        let mut in_ws = false;
        for l in workspace_toml.lines() {
            let t = l.trim();
            if t.starts_with('[') {
                in_ws = t == "[workspace.dependencies]";
            } else if in_ws && dep_name(t).as_deref() == Some(name) {
                return t.to_string();
            }
        }
        String::new()
    };
    let mut section = String::new();
    for (n, l) in toml.lines().enumerate() {
        let t = l.split('#').next().unwrap_or("").trim();
        if t.starts_with('[') {
            section = t.trim_matches(|c| c == '[' || c == ']').to_string();
            // `[dependencies.foo]` table form.
            if let Some(name) = section.strip_prefix("dependencies.") {
                if !DOMAIN_ALLOWED.contains(&name) {
                    out.push(Violation {
                        file: path.into(),
                        line: n + 1,
                        rule: Rule::DomainDependency,
                        what: name.into(),
                    });
                }
            }
            continue;
        }
        // Build and target dependencies count; dev-dependencies (tests) do not.
        let checked = section == "dependencies"
            || section == "build-dependencies"
            || (section.starts_with("target.") && section.ends_with(".dependencies"));
        let Some(name) = dep_name(t).filter(|_| checked) else {
            continue;
        };
        let mut flag = |what: String| {
            out.push(Violation {
                file: path.into(),
                line: n + 1,
                rule: Rule::DomainDependency,
                what,
            })
        };
        if !DOMAIN_ALLOWED.contains(&name.as_str()) {
            flag(name.clone());
            continue;
        }
        let inherited = if t.contains("workspace") {
            workspace_line(&name)
        } else {
            String::new()
        };
        let features = format!("{t} {inherited}");
        for (dep, bad) in DOMAIN_FORBIDDEN_FEATURES {
            if name == *dep {
                for f in *bad {
                    if features.contains(&format!("\"{f}\"")) {
                        flag(format!("{name} with feature \"{f}\""));
                    }
                }
                // chrono's default features include `clock`.
                if name == "chrono" && !features.contains("default-features = false") {
                    flag(format!(
                        "{name} with default features (they read the clock)"
                    ));
                }
            }
        }
        if name == "utoipa" && !t.contains("optional = true") {
            flag("utoipa must be optional (behind the `openapi` feature)".into());
        }
        if name == "ts-rs" && !t.contains("optional = true") {
            flag("ts-rs must be optional (behind the `ts` feature)".into());
        }
    }
    out
}

/// `foo = …`, `foo.workspace = true`, `"foo" = …` → `foo`.
fn dep_name(line: &str) -> Option<String> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    let name = key.split('.').next()?.trim();
    (!name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    .then(|| name.to_string())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Every `.rs` file the rules cover, relative to the root.
fn scanned_files(root: &Path) -> Vec<String> {
    let mut dirs = vec![root.join("backend/src"), root.join("src-tauri/src")];
    let mut crates: Vec<_> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path().join("src"))
        .collect();
    crates.sort();
    dirs.extend(crates.into_iter().filter(|d| d.is_dir()));
    let mut files = Vec::new();
    for d in dirs {
        rust_files(&d, &mut files);
    }
    files
        .iter()
        .map(|f| {
            f.strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect()
}

#[test]
fn workspace_keeps_its_crate_boundaries() {
    let root = workspace_root();
    let files = scanned_files(&root);
    for must in [
        "backend/src/main.rs",
        "crates/domain/src/lib.rs",
        "crates/store/src/lib.rs",
        "crates/server/src/lib.rs",
        "crates/sync/src/lib.rs",
        "src-tauri/src/lib.rs",
    ] {
        assert!(files.iter().any(|f| f == must), "tidy did not scan {must}");
    }
    let mut violations = Vec::new();
    for f in &files {
        let src = std::fs::read_to_string(root.join(f)).unwrap();
        violations.extend(check_source(f, &src));
    }
    let manifest = "crates/domain/Cargo.toml";
    violations.extend(check_domain_manifest(
        manifest,
        &std::fs::read_to_string(root.join(manifest)).unwrap(),
        &std::fs::read_to_string(root.join("Cargo.toml")).unwrap(),
    ));
    let report: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
    assert!(
        report.is_empty(),
        "{} crate-boundary violation(s):\n{}",
        report.len(),
        report.join("\n")
    );
}

/// The SQL detector recognises the store's own statements: were it blind, the
/// test above would pass for the wrong reason.
#[test]
fn the_sql_detector_sees_the_stores_sql() {
    let root = workspace_root();
    let (mut literals, mut rusqlite) = (0, 0);
    for f in scanned_files(&root)
        .iter()
        .filter(|f| f.starts_with("crates/store/"))
    {
        let src = std::fs::read_to_string(root.join(f)).unwrap();
        // The same file, judged as if it lived in another crate.
        let moved = f.replace("crates/store/", "crates/server/");
        for v in check_source(&moved, &src) {
            if v.what == "rusqlite" {
                rusqlite += 1;
            } else {
                literals += 1;
            }
        }
    }
    assert!(
        literals > 100,
        "only {literals} SQL literals found in crates/store"
    );
    assert!(
        rusqlite > 10,
        "only {rusqlite} rusqlite paths found in crates/store"
    );
}

#[test]
fn source_rules_case_table() {
    use Rule::*;
    // (file, source, the violations expected: line and rule)
    type Case<'a> = (&'a str, &'a str, &'a [(usize, Rule)]);
    let cases: &[Case] = &[
        // SQL outside the store, in each form.
        (
            "crates/server/src/x.rs",
            "fn f() {\n    let q = \"SELECT id FROM slots\";\n}",
            &[(2, SqlOutsideStore)],
        ),
        (
            "backend/src/main.rs",
            "const Q: &str = \"INSERT INTO t (a) VALUES (1)\";",
            &[(1, SqlOutsideStore)],
        ),
        (
            "src-tauri/src/gate/mod.rs",
            "x(\"UPDATE tickets\n     SET status = 'x'\");",
            &[(1, SqlOutsideStore)],
        ),
        (
            "crates/sync/src/client.rs",
            "let q = r#\"\n\n  DELETE FROM outbox WHERE id = ?1\"#;",
            &[(3, SqlOutsideStore)],
        ),
        (
            "crates/server/src/x.rs",
            "db(\"CREATE TABLE x (id)\")",
            &[(1, SqlOutsideStore)],
        ),
        (
            "crates/server/src/x.rs",
            "c.execute_batch(\"PRAGMA foreign_keys = ON\")",
            &[(1, SqlOutsideStore)],
        ),
        (
            "crates/server/src/x.rs",
            "use rusqlite::params;",
            &[(1, SqlOutsideStore)],
        ),
        (
            "src-tauri/src/lib.rs",
            "fn f(c: &rusqlite::Connection) {}",
            &[(1, SqlOutsideStore)],
        ),
        // ...and what is not SQL.
        (
            "crates/store/src/slots.rs",
            "use rusqlite::params;\nlet q = \"SELECT id FROM slots\";",
            &[],
        ),
        (
            "crates/store-pg/src/slots.rs",
            "let q = \"SELECT id FROM reservation_slots FOR UPDATE\";",
            &[],
        ),
        (
            "crates/server/src/x.rs",
            "// SELECT id FROM slots\n/// INSERT INTO t\n/* DELETE FROM x */",
            &[],
        ),
        (
            "crates/server/src/x.rs",
            "let m = \"select a slot from the list, then update the settings\";",
            &[],
        ),
        (
            "crates/server/src/x.rs",
            "let m = \"the SELECT button\"; let n = \"FROM\";",
            &[],
        ),
        (
            "crates/server/src/x.rs",
            "let c = '\"'; let q = \"no sql\"; let d = '\"';",
            &[],
        ),
        (
            "crates/server/src/x.rs",
            "fn f<'a>(x: &'a str) -> &'a str { \"UPDATE me\" }",
            &[],
        ),
        (
            "crates/server/src/x.rs",
            "let not_rusqlite_x = my_rusqlite;",
            &[],
        ),
        (
            "crates/server/src/x.rs",
            "let s = \"a \\\" SELECT x FROM y\";",
            &[(1, SqlOutsideStore)],
        ),
        (
            "crates/domain/src/ids.rs",
            "assert!(TicketCode::parse(\"x'; DROP TABLE x; --\").is_err());",
            &[],
        ),
        // Clock, randomness and I/O in domain.
        (
            "crates/domain/src/slot.rs",
            "fn f() {\n    let t = Utc::now();\n}",
            &[(2, ClockInDomain)],
        ),
        (
            "crates/domain/src/x.rs",
            "let t = chrono::Local::now();",
            &[(1, ClockInDomain)],
        ),
        (
            "crates/domain/src/x.rs",
            "let t = std::time::SystemTime::now();",
            &[(1, ClockInDomain)],
        ),
        (
            "crates/domain/src/x.rs",
            "let t = Instant::now();",
            &[(1, ClockInDomain)],
        ),
        (
            "crates/domain/src/ids.rs",
            "Self(Uuid::now_v7())",
            &[(1, ClockInDomain)],
        ),
        (
            "crates/domain/src/ids.rs",
            "Self(uuid::Uuid::new_v4())",
            &[(1, ClockInDomain)],
        ),
        (
            "crates/domain/src/x.rs",
            "let s = std::fs::read_to_string(p);",
            &[(1, IoInDomain)],
        ),
        (
            "crates/domain/src/x.rs",
            "use std::net::TcpStream;",
            &[(1, IoInDomain)],
        ),
        (
            "crates/domain/src/x.rs",
            "let v = std::env::var(\"X\");",
            &[(1, IoInDomain)],
        ),
        (
            "crates/domain/src/x.rs",
            "tokio::spawn(f);",
            &[(1, IoInDomain)],
        ),
        (
            "crates/domain/src/x.rs",
            "use rusqlite::Row;",
            &[(1, SqlOutsideStore), (1, IoInDomain)],
        ),
        // OpenAPI in domain only behind the feature.
        (
            "crates/domain/src/x.rs",
            "#[derive(Debug, utoipa::ToSchema)]\nstruct A;",
            &[(1, OpenApiInDomain)],
        ),
        (
            "crates/domain/src/x.rs",
            "use utoipa::ToSchema;\n#[derive(ToSchema)]\nstruct A {\n    #[schema(value_type = String)]\n    a: X,\n}",
            &[(1, OpenApiInDomain), (2, OpenApiInDomain), (4, OpenApiInDomain)],
        ),
        (
            "crates/domain/src/x.rs",
            "#[cfg_attr(feature = \"other\", derive(utoipa::ToSchema))]\nstruct A;",
            &[(1, OpenApiInDomain)],
        ),
        (
            "crates/domain/src/x.rs",
            "#[derive(Debug)]\n#[cfg_attr(feature = \"openapi\", derive(utoipa::ToSchema))]\nstruct A {\n    #[cfg_attr(\n        feature = \"openapi\",\n        schema(value_type = String, example = \"09:00\")\n    )]\n    a: X,\n}",
            &[],
        ),
        (
            "crates/server/src/x.rs",
            "#[derive(utoipa::ToSchema)]\nstruct A;",
            &[],
        ),
        // Outside domain the clock is allowed; in domain, talking about it is.
        ("crates/store/src/x.rs", "let now = Utc::now();", &[]),
        (
            "crates/server/src/x.rs",
            "let now = Utc::now(); let f = std::fs::read(p);",
            &[],
        ),
        (
            "crates/domain/src/x.rs",
            "/// Time comes in as `now`, never `Utc::now()`.\nfn f(now: DateTime<Utc>) {}",
            &[],
        ),
        (
            "crates/domain/src/x.rs",
            "let m = \"we never call Utc::now here\";",
            &[],
        ),
        (
            "crates/domain/src/x.rs",
            "fn utc_now_v7_ish() {} let my_tokio = 1;",
            &[],
        ),
    ];
    for (path, src, want) in cases {
        let got: Vec<(usize, Rule)> = check_source(path, src)
            .iter()
            .map(|v| (v.line, v.rule))
            .collect();
        assert_eq!(&got, want, "{path}: {src:?}");
    }
}

#[test]
fn domain_manifest_rules_case_table() {
    use Rule::DomainDependency as D;
    let ws = "[workspace.dependencies]\n\
              chrono = { version = \"0.4\", default-features = false, features = [\"std\", \"serde\"] }\n\
              uuid = { version = \"1\", features = [\"serde\"] }\n";
    let ws_clock = "[workspace.dependencies]\n\
                    chrono = { version = \"0.4\", default-features = false, features = [\"clock\"] }\n";
    let cases: &[(&str, &str, &[usize])] = &[
        ("[dependencies]\nserde.workspace = true\nthiserror = \"2\"\nchrono.workspace = true\n", ws, &[]),
        ("[dependencies]\nserde = \"1\"\nrusqlite = \"0.37\"\n", ws, &[3]),
        ("[dependencies]\ntokio = { version = \"1\" }\naxum = \"0.8\"\nreqwest.workspace = true\n", ws, &[2, 3, 4]),
        ("[dependencies]\nchrono = { version = \"0.4\", default-features = false, features = [\"clock\"] }\n", ws, &[2]),
        ("[dependencies]\nchrono = \"0.4\"\n", ws, &[2]),
        ("[dependencies]\nchrono.workspace = true\n", ws_clock, &[2]),
        ("[dependencies]\nchrono = { workspace = true, features = [\"clock\"] }\n", ws, &[2]),
        ("[dependencies]\nuuid = { workspace = true, features = [\"v7\"] }\n", ws, &[2]),
        ("[dependencies]\nutoipa = \"5\"\n", ws, &[2]),
        ("[features]\nopenapi = [\"dep:utoipa\"]\n[dependencies]\nutoipa = { workspace = true, optional = true }\n", ws, &[]),
        ("[dependencies.tokio]\nversion = \"1\"\n", ws, &[1]),
        ("[target.'cfg(unix)'.dependencies]\nlibc = \"0.2\"\n", ws, &[2]),
        ("[build-dependencies]\ncc = \"1\"\n", ws, &[2]),
        // Tests may use anything.
        ("[dev-dependencies]\nproptest = \"1\"\ntempfile = \"3\"\n", ws, &[]),
        ("[package]\nname = \"entrada-domain\"\nversion.workspace = true\n", ws, &[]),
    ];
    for (toml, ws, want) in cases {
        let got = check_domain_manifest("crates/domain/Cargo.toml", toml, ws);
        assert!(got.iter().all(|v| v.rule == D));
        let lines: Vec<usize> = got.iter().map(|v| v.line).collect();
        assert_eq!(&lines, want, "{toml}\n{got:#?}");
    }
}
