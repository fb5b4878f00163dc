//! The README's library quick start, built the way a new user would build it: its
//! `Cargo.toml` lines, `src/lib.rs` and `tests/telemetry.rs`, copied as they are into a
//! scratch crate that depends on this package by path, under its published name, and
//! tested with `cargo test`. Every dependency line the README shows must name this
//! package, ask for a version this one satisfies, and enable only features it has.

use std::path::{Path, PathBuf};
use std::process::Command;

const README: &str = include_str!("../README.md");

/// The code blocks of the README: (info string, text).
fn blocks() -> Vec<(&'static str, String)> {
    let mut blocks = Vec::new();
    let mut lines = README.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let mut text = String::new();
        for line in lines.by_ref() {
            if line == "```" {
                break;
            }
            text.push_str(line);
            text.push('\n');
        }
        blocks.push((info, text));
    }
    blocks
}

/// The one block whose first line is `first`.
fn block(first: &str) -> String {
    let found: Vec<String> = blocks()
        .into_iter()
        .filter(|(_, text)| text.lines().next() == Some(first))
        .map(|(_, text)| text)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "the README has one block starting {first:?}"
    );
    found.into_iter().next().unwrap()
}

/// The value of a dependency line on this package, with the version requirement
/// replaced by a path to this checkout. Checks the requirement and the features.
fn by_path(value: &str, manifest_dir: &Path) -> String {
    let path = format!("path = {:?}", manifest_dir.display().to_string());
    let version = env!("CARGO_PKG_VERSION_MAJOR");
    let requirement = format!("\"{version}\"");
    let value = value.trim();
    if value == requirement {
        return format!("{{ {path} }}");
    }
    let inline = format!("version = {requirement}");
    assert!(
        value.starts_with('{') && value.contains(&inline),
        "a README dependency line asks for {value}, which version {} does not satisfy as written",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(features) = value
        .split("features = [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
    {
        let manifest = std::fs::read_to_string(manifest_dir.join("Cargo.toml")).unwrap();
        for feature in features.split(',').map(|f| f.trim().trim_matches('"')) {
            assert!(
                manifest.contains(&format!("\n{feature} = [")),
                "the README enables feature {feature:?}, which this package does not have"
            );
        }
    }
    value.replace(&inline, &path)
}

#[test]
fn every_dependency_line_names_this_package_at_a_version_it_satisfies() {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut lines = 0;
    for (info, text) in blocks() {
        if info != "toml" {
            continue;
        }
        for line in text.lines() {
            assert!(
                !line.trim_start().starts_with("telemetry ="),
                "`telemetry` on the registry is another crate: {line}"
            );
            if let Some(value) = line.strip_prefix("tracing-telemetry =") {
                let value = value.split(" #").next().unwrap();
                by_path(value, manifest_dir);
                lines += 1;
            }
        }
    }
    assert!(lines >= 3, "the README shows its dependency lines");
}

#[test]
fn the_library_quick_start_builds_and_its_test_passes() {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = block("# Cargo.toml");
    let lib = block("// src/lib.rs");
    let test = block("// tests/telemetry.rs");
    assert!(
        test.contains("my_library::"),
        "the README's test calls the library it shows"
    );

    let dependencies: String = manifest
        .lines()
        .map(|line| match line.strip_prefix("tracing-telemetry =") {
            Some(value) => {
                let (value, _comment) = value.split_once(" #").unwrap_or((value, ""));
                format!("tracing-telemetry = {}\n", by_path(value, manifest_dir))
            }
            None => format!("{line}\n"),
        })
        .collect();

    let dir = std::env::temp_dir().join(format!("telemetry-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"my-library\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             {dependencies}\n[workspace]\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/lib.rs"), lib).unwrap();
    std::fs::write(dir.join("tests/telemetry.rs"), test).unwrap();
    // The same versions as this crate's own lockfile, so that no network is needed.
    std::fs::copy(manifest_dir.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();

    // The library alone: what its users build, with the default features off.
    let out = Command::new(env!("CARGO"))
        .args(["check", "--offline", "--quiet", "--lib"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("CARGO_MAKEFLAGS")
        .output()
        .expect("run cargo check");
    assert!(
        out.status.success(),
        "the README's library, without the default features:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = Command::new(env!("CARGO"))
        .args(["test", "--offline", "--quiet"])
        .current_dir(&dir)
        // This run's target directory: the dependencies are mostly built already.
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("CARGO_MAKEFLAGS")
        .output()
        .expect("run cargo test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the README's library and test:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "the README's test ran: {stdout}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The target directory this test binary was built in (`<target>/debug/deps/readme-*`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .nth(3)
        .expect("the target directory")
        .to_path_buf()
}
