//! `ranklet eval` on a synthetic dataset written in the catalog + events contracts.

mod common;

use std::process::Command;

use common::{contracts_folder, contracts_folder_sized, ranklet_ok, train};
use ranklet::bundle::write_encoder_dir;
use ranklet::fixtures::tiny_bert_files;

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

#[test]
fn reports_of_one_dataset_collect_one_model_per_name() {
    let dir = contracts_folder("merge");
    let report = dir.join("table.json");
    let r = report.to_str().unwrap();
    let d = dir.to_str().unwrap();
    ranklet_ok(&["eval", "--data", d, "--report", r]);
    let ck = dir.join("ck");
    let train_args = [
        "train",
        "--data",
        d,
        "--mode",
        "id",
        "--hidden",
        "8",
        "--heads",
        "2",
        "--inner",
        "8",
        "--layers",
        "1",
        "--epochs",
        "1",
        "--max-len",
        "10",
        "--quiet",
        "--restart",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--report",
        r,
    ];
    ranklet_ok(&train_args);
    ranklet_ok(&train_args); // the same model again replaces its entry
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let names: Vec<&str> = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["popularity", "ranklet-id"]);
    assert!(
        v["models"][1]["command"]
            .as_str()
            .unwrap()
            .contains("train")
    );
}

/// A `--report` file that is not a report, or holds another dataset's, is never overwritten:
/// it is kept beside as `NAME.N.bak` and said so.
#[test]
fn a_report_of_another_dataset_or_an_unreadable_one_is_kept() {
    let dir = contracts_folder("keep-report");
    let report = dir.join("table.json");
    let r = report.to_str().unwrap();
    let d = dir.to_str().unwrap();
    std::fs::write(&report, b"{ half a report").unwrap();
    let out = ranklet_ok(&["eval", "--data", d, "--report", r]);
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(
        note.contains("table.json.1.bak") && note.contains("not a readable JSON report"),
        "{note}"
    );
    assert_eq!(
        std::fs::read(dir.join("table.json.1.bak")).unwrap(),
        b"{ half a report"
    );
    let other = r#"{"dataset": "another-shop", "models": [{"name": "theirs"}]}"#;
    std::fs::write(&report, other).unwrap();
    let out = ranklet_ok(&["eval", "--data", d, "--report", r]);
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(
        note.contains("table.json.2.bak") && note.contains("another-shop"),
        "{note}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("table.json.2.bak")).unwrap(),
        other
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_ne!(v["dataset"], "another-shop");
}

/// A reader that closes the pipe early (`ranklet eval … | head -1`) ends the run quietly with
/// success, not a panic (exit 101).
#[test]
fn a_closed_output_pipe_is_not_a_panic() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let dir = contracts_folder("pipe");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ranklet"))
        .args(["eval", "--data", dir.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read nothing and close our end: every line the command prints meets a closed pipe.
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `eval --shelf-response`: the genre response (per genre with enough items, and its mean) and
/// the test users' miscalibration, in the report, for the popularity baseline and a model;
/// popularity, which ignores the history, answers a genre no better than a model trained on
/// genre tastes.
#[test]
fn shelf_response_is_measured_for_popularity_and_a_model() {
    let dir = contracts_folder_sized("shelf-response", 120, 48, 8, 16);
    let d = dir.to_str().unwrap();
    let report = dir.join("shelf.json");
    let r = report.to_str().unwrap();
    // One eval into the shared report; returns the report so far.
    let eval = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "eval",
            "--data",
            d,
            "--shelf-response",
            "--shelf-min-items",
            "5",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--report", r]);
        let out = ranklet_ok(&args);
        assert!(String::from_utf8_lossy(&out.stdout).contains("shelf response:"));
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap()
    };
    let v = eval(&[]);
    let pop = &v["models"][0]["shelf"];
    let per_facet = pop["facet_response"]["per_facet"].as_object().unwrap();
    assert!(!per_facet.is_empty(), "{pop}");
    assert!(
        per_facet
            .values()
            .all(|s| (0.0..=1.0).contains(&s.as_f64().unwrap()))
    );
    assert!(pop["miscalibration_ckl@10"].as_f64().unwrap() >= 0.0);
    let bundle = dir.join("bundle");
    let b = bundle.to_str().unwrap();
    train(
        &dir,
        &["--mode", "id", "--epochs", "20", "--lr", "5e-3", "--out", b],
    );
    let v = eval(&["--model", b]);
    let mean = |m: &serde_json::Value| m["shelf"]["facet_response"]["mean"].as_f64().unwrap();
    let (popularity, model) = (mean(&v["models"][0]), mean(&v["models"][1]));
    println!("genre response on synthetic tastes: popularity {popularity:.3}, model {model:.3}");
    assert!(
        model > popularity,
        "model {model} vs popularity {popularity}"
    );
    // Calibrated re-ranking moves each list's genre mix towards its history's.
    let v = eval(&["--model", b, "--calibrate", "0.9"]);
    let ckl = |m: &serde_json::Value| m["shelf"]["miscalibration_ckl@10"].as_f64().unwrap();
    let name = v["models"][2]["name"].as_str().unwrap();
    assert!(name.contains("calibrated, λ 0.9"), "{name}");
    let (plain, calibrated) = (ckl(&v["models"][1]), ckl(&v["models"][2]));
    println!("C_KL@10: model {plain:.3}, calibrated (λ 0.9) {calibrated:.3}");
    assert!(calibrated < plain, "{calibrated} vs {plain}");
}
