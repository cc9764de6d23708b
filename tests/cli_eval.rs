//! `ranklet eval` on a synthetic dataset written in the catalog + events contracts.

use std::process::Command;

use std::path::{Path, PathBuf};

use ranklet::bundle::write_encoder_dir;
use ranklet::data::synthetic::synthetic_dataset;
use ranklet::fixtures::tiny_bert_files;

/// Runs the binary and insists that it succeeded.
fn ranklet_ok(args: &[&str]) -> std::process::Output {
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
fn contracts_folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ranklet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ds = synthetic_dataset(40, 30, 4, 9, 1);
    let catalog: String = ds
        .items
        .iter()
        .map(|it| format!("{}\n", serde_json::json!({"id": it.id, "title": it.text})))
        .collect();
    let mut events = String::new();
    for (u, seq) in ds.sequences.iter().enumerate() {
        for (t, &i) in seq.iter().enumerate() {
            events.push_str(&format!(
                "{}\n",
                serde_json::json!({"user": ds.users[u], "item": ds.items[i].id, "ts": 1_700_000_000 + t, "event": "click"})
            ));
        }
    }
    std::fs::write(dir.join("catalog.jsonl"), catalog).unwrap();
    std::fs::write(dir.join("events.jsonl"), events).unwrap();
    dir
}

#[test]
fn eval_writes_a_report_for_a_contracts_folder() {
    let dir = contracts_folder("eval");
    let report = dir.join("report.json");
    let out = ranklet_ok(&[
        "eval",
        "--data",
        dir.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("40 users, 30 items"), "{stdout}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let test = &r["models"][0]["test"];
    for k in ["recall@10", "ndcg@10", "mrr@10", "recall@20", "ndcg@20"] {
        let v = test[k].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{k} = {v}");
    }
    // 30 items: every target is within the top 30, so recall@20 < 1 is possible but @30 is not
    // reported; recall@20 ≥ recall@10 always.
    assert!(test["recall@20"].as_f64().unwrap() >= test["recall@10"].as_f64().unwrap());

    // An event naming an unknown item is refused with its line.
    std::fs::write(
        dir.join("events.jsonl"),
        "{\"user\":\"u\",\"item\":\"nope\",\"ts\":1}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ranklet"))
        .args(["eval", "--data", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("events.jsonl line 1") && err.contains("\"nope\""),
        "{err}"
    );
}

fn train(dir: &Path, extra: &[&str]) -> serde_json::Value {
    let report = dir.join("train.json");
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
        "--epochs",
        "3",
        "--max-len",
        "10",
        "--batch-size",
        "16",
    ]);
    args.extend_from_slice(extra);
    ranklet_ok(&args);
    serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap()
}

#[test]
fn train_reports_in_id_and_inductive_modes() {
    let dir = contracts_folder("train");
    let r = train(&dir, &["--mode", "id"]);
    let m = &r["models"][0];
    assert_eq!(m["mode"], "id");
    assert_eq!(m["epochs"], 3);
    assert!(m["test"]["ndcg@10"].as_f64().unwrap() >= 0.0);

    // Inductive mode embeds item texts with a text-encoder folder (the tiny BERT here), cached.
    let model = dir.join("tiny-encoder");
    write_encoder_dir(&model, &tiny_bert_files(3)).unwrap();
    let cache = dir.join("vectors");
    let args = [
        "--mode",
        "inductive",
        "--text-model",
        model.to_str().unwrap(),
        "--cache",
        cache.to_str().unwrap(),
    ];
    let r = train(&dir, &args);
    assert_eq!(r["models"][0]["mode"], "inductive");
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);
    // Same seed, same data: the same figures.
    let again = train(&dir, &args);
    assert_eq!(r["models"][0]["test"], again["models"][0]["test"]);
}
