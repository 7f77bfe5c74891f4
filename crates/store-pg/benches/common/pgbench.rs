//! PostgreSQL's own floor for the hot-slot shape of transaction (one row
//! lock + increment + insert), measured by `pgbench` in the same run as what
//! it is compared with: `hot_slot` here and `entrada`'s `pg_http` bench
//! (which includes this file by path).

/// A new empty schema `bench_{name}_{pid}` (dropped first if left over).
pub fn fresh_schema(url: &str, name: &str) -> String {
    let schema = format!("bench_{name}_{}", std::process::id());
    let mut admin = postgres::Client::connect(url, postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .unwrap();
    schema
}

/// pgbench's transactions per second for the hot-slot shape of transaction.
pub fn pgbench_floor(url: &str, clients: usize, seconds: u32) -> f64 {
    let schema = fresh_schema(url, "floor");
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.batch_execute(&format!(
        "CREATE TABLE {schema}.hot (id INT PRIMARY KEY, n BIGINT NOT NULL);
         INSERT INTO {schema}.hot VALUES (1, 0);
         CREATE TABLE {schema}.log (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v TEXT NOT NULL);"
    ))
    .unwrap();
    let tps = pgbench_tps(
        url,
        &schema,
        "BEGIN;\nUPDATE hot SET n = n + 1 WHERE id = 1;\nINSERT INTO log (v) VALUES ('x');\nEND;\n",
        &[],
        clients,
        seconds,
    );
    let _ = c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
    tps
}

/// pgbench's transactions per second for `script` run by `clients` clients
/// for `seconds` in `schema` (its `search_path`), with `args` before the
/// usual ones (e.g. `-M prepared`).
pub fn pgbench_tps(
    url: &str,
    schema: &str,
    script: &str,
    args: &[&str],
    clients: usize,
    seconds: u32,
) -> f64 {
    let dir = std::env::temp_dir().join(format!("entrada-pgbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("script.sql");
    std::fs::write(&file, script).unwrap();
    let bin = std::env::var("PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    let out = std::process::Command::new(format!("{bin}/pgbench"))
        .env("PGOPTIONS", format!("-c search_path={schema}"))
        .args(args)
        .args([
            "-n",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(&file)
        .arg(url)
        .output()
        .expect("pgbench (Debian's postgresql-15)");
    let text = String::from_utf8_lossy(&out.stdout);
    let tps = text
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no tps in pgbench's output:\n{text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let _ = std::fs::remove_dir_all(&dir);
    tps
}
