//! Helpers shared by the CLI tests: running the binary, writing synthetic dataset folders.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ranklet::bundle::write_encoder_dir;
use ranklet::data::synthetic::{synthetic_dataset, write_contracts};
use ranklet::fixtures::tiny_bert_files;

/// Runs the binary and insists that it succeeded.
pub fn ranklet_ok(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ranklet"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Writes a synthetic dataset as catalog.jsonl + events.jsonl into a fresh folder.
/// Runs the binary and insists that it refused the input (exit 2); returns its stderr.
pub fn ranklet_err(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ranklet"))
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected a bad-input exit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn contracts_folder(name: &str) -> PathBuf {
    contracts_folder_sized(name, 40, 30, 4, 9)
}

/// A synthetic dataset of `users` users over `items` items, histories of `min`–`max` events,
/// as catalog.jsonl + events.jsonl in a fresh folder.
pub fn contracts_folder_sized(
    name: &str,
    users: usize,
    items: usize,
    min: usize,
    max: usize,
) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ranklet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    write_contracts(&synthetic_dataset(users, items, min, max, 1), &dir).unwrap();
    dir
}

pub fn train(dir: &Path, extra: &[&str]) -> serde_json::Value {
    let report = dir.join("train.json");
    let _ = std::fs::remove_file(&report); // reports merge models; start each run afresh
    let mut args = vec![
        "train",
        "--data",
        dir.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--quiet",
        "--restart",
    ];
    let checkpoint = dir.join("checkpoint");
    args.extend_from_slice(&["--checkpoint", checkpoint.to_str().unwrap()]);
    args.extend_from_slice(&[
        "--hidden",
        "16",
        "--heads",
        "2",
        "--inner",
        "32",
        "--layers",
        "1",
        "--experts",
        "2",
        "--max-len",
        "10",
        "--batch-size",
        "16",
    ]);
    if !extra.contains(&"--epochs") {
        args.extend_from_slice(&["--epochs", "3"]);
    }
    args.extend_from_slice(extra);
    ranklet_ok(&args);
    serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap()
}

#[cfg(not(feature = "fixtures"))]
compile_error!(
    "the integration tests need the test fixtures: cargo test --features fixtures (./build.sh test passes it)"
);

/// A tiny random BERT encoder folder (the fixtures') in `dir`; its path.
pub fn tiny_encoder(dir: &Path) -> String {
    let model = dir.join("tiny-encoder");
    write_encoder_dir(&model, &tiny_bert_files(3)).unwrap();
    model.to_str().unwrap().to_string()
}
