//! A `try_init` that fails leaves nothing behind. Its own process: it installs a global
//! subscriber first, as an app (or a library it calls) might have done.

#![cfg(feature = "subscriber")]

#[allow(dead_code, reason = "not every shared helper is used here")]
mod support;

use tracing_telemetry::Config;

#[test]
fn a_refused_install_creates_no_file_and_starts_nothing() {
    let dir = support::temp_dir("failed-init");
    let file = dir.join("telemetry.jsonl");
    tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default())
        .expect("the first global subscriber");

    let config = Config::new().with_enabled(true).with_file(&file);
    let err =
        tracing_telemetry::try_init_with(&config).expect_err("a subscriber is already installed");
    assert!(
        err.to_string()
            .starts_with("a global tracing subscriber is already installed"),
        "{err}"
    );
    assert!(std::error::Error::source(&err).is_some());
    assert!(!file.exists(), "a refused try_init created {file:?}");
    let threads = std::fs::read_dir("/proc/self/task").map(|tasks| {
        tasks
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with("telemetry"))
            .count()
    });
    if let Ok(threads) = threads {
        assert_eq!(threads, 0, "a refused try_init left an export thread");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
