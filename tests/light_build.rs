//! What a library pays for depending on this crate without its default features: a
//! scratch library crate in a temporary directory depends on it by path with
//! `default-features = false`, and `cargo tree` lists what that brings in.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// The crates `cargo tree` lists for a library that depends on `tracing-telemetry` with
/// `default-features = false`: the library, `tracing-telemetry`, `tracing` and `tracing-core`
/// and their own small dependencies.
const LIGHT: [&str; 6] = [
    "light-library",
    "once_cell",
    "pin-project-lite",
    "tracing",
    "tracing-core",
    "tracing-telemetry",
];

/// The crate names in `cargo tree` of the manifest in `dir` (normal dependencies only:
/// what the library's users build).
fn tree(dir: &Path) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}"])
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("run cargo tree");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "cargo tree failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_library_without_default_features_builds_only_tracing() {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("telemetry-light-build-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            r#"[package]
name = "light-library"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
tracing-telemetry = {{ path = {:?}, default-features = false }}

[workspace]
"#,
            manifest_dir.display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("src/lib.rs"),
        r#"pub fn sign_up(plan: &str) {
    tracing_telemetry::track_event("user.signup", &[("plan", plan)]);
    tracing_telemetry::track_event!("user.upgrade", plan = plan, seats = 3);
    let _timer = tracing_telemetry::timer("db.query", &[("table", "users")]);
}
"#,
    )
    .unwrap();
    // The same versions as this crate's own lockfile, so that no network is needed.
    std::fs::copy(manifest_dir.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();

    let light = tree(&dir);
    assert_eq!(
        light.iter().map(String::as_str).collect::<Vec<_>>(),
        LIGHT,
        "a library without default features pulls in more than tracing"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
