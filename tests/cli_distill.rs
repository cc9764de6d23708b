//! `ranklet distill` as a user runs it, on the tiny random teacher and a synthetic shop: a
//! student bundle that `ranklet embed` loads, a report, refusals of corrupt and truncated
//! bundles naming the file, and of a folder that is not a bundle.

mod common;

use std::path::Path;

use common::{contracts_folder, ranklet_err, ranklet_ok};
use ranklet::bundle::write_encoder_dir;
use ranklet::fixtures::tiny_bert_files;

fn distill(dir: &Path, out: &Path, extra: &[&str]) -> serde_json::Value {
    let teacher = dir.join("teacher");
    if !teacher.exists() {
        write_encoder_dir(&teacher, &tiny_bert_files(5)).unwrap();
    }
    let report = dir.join("distill.json");
    let checkpoint = dir.join("checkpoint");
    let mut args = vec![
        "distill",
        "--teacher",
        teacher.to_str().unwrap(),
        "--texts",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--restart",
        "--epochs",
        "3",
        "--stage1-epochs",
        "1",
        "--batch-size",
        "8",
        "--heads",
        "1",
        "--ffn",
        "8",
        "--layers",
        "1",
        "--max-len",
        "32",
        "--report",
        report.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    ranklet_ok(&args);
    serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap()
}

#[test]
fn distils_a_loadable_student_bundle_and_refuses_damaged_ones() {
    let dir = contracts_folder("distill");
    let out = dir.join("student");
    let r = distill(&dir, &out, &[]);
    let s = &r["student"];
    assert_eq!(s["layers"], 1);
    assert_eq!(s["heads"], 1);
    assert_eq!(s["ffn"], 8);
    assert!(s["params"].as_u64().unwrap() < r["teacher"]["params"].as_u64().unwrap());
    assert!(s["mean_cosine_to_teacher"].as_f64().unwrap().is_finite());
    let dtypes = &r["ablations"][0]["dtypes"];
    assert!(
        dtypes["int8"]["encoder_bytes"].as_u64() < dtypes["f16"]["encoder_bytes"].as_u64()
            && dtypes["f16"]["encoder_bytes"].as_u64() < dtypes["f32"]["encoder_bytes"].as_u64()
    );
    // The manifest names the int8 weights; the f16 HF file is listed too.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["encoder"]["weights"], "encoder.int8.safetensors");
    assert!(manifest["files"]["encoder.safetensors"]["sha256"].is_string());
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["num_attention_heads"], 2,
        "HF counts heads before pruning"
    );
    assert_eq!(config["pruned_heads"]["0"].as_array().unwrap().len(), 1);

    // The bundle embeds text.
    let embedded = ranklet_ok(&[
        "embed",
        "--model",
        out.to_str().unwrap(),
        "--text",
        "red shoes",
    ]);
    assert!(String::from_utf8_lossy(&embedded.stdout).contains('['));

    // A flipped byte and a truncated file are refused, naming the file.
    let weights = out.join("encoder.int8.safetensors");
    let good = std::fs::read(&weights).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x5a;
    for (what, bytes) in [
        ("corrupt", bad),
        ("truncated", good[..good.len() / 3].to_vec()),
    ] {
        std::fs::write(&weights, bytes).unwrap();
        let err = ranklet_err(&["embed", "--model", out.to_str().unwrap(), "--text", "x"]);
        assert!(err.contains("encoder.int8.safetensors"), "{what}: {err}");
    }
    std::fs::write(&weights, &good).unwrap();

    // A folder that is not a bundle is never emptied.
    let precious = dir.join("precious");
    std::fs::create_dir_all(&precious).unwrap();
    std::fs::write(precious.join("notes.txt"), "keep me").unwrap();
    let err = ranklet_err(&[
        "distill",
        "--teacher",
        dir.join("teacher").to_str().unwrap(),
        "--texts",
        dir.to_str().unwrap(),
        "--out",
        precious.to_str().unwrap(),
        "--checkpoint",
        dir.join("checkpoint").to_str().unwrap(),
        "--restart",
        "--epochs",
        "1",
        "--layers",
        "1",
        "--heads",
        "1",
        "--ffn",
        "8",
        "--quiet",
    ]);
    assert!(err.contains("notes.txt"), "{err}");
    assert_eq!(
        std::fs::read_to_string(precious.join("notes.txt")).unwrap(),
        "keep me"
    );
}

/// Settings out of range are refused before any work, naming the flag.
#[test]
fn refuses_out_of_range_settings_naming_the_flag() {
    let dir = contracts_folder("distill-ranges");
    let teacher = dir.join("teacher");
    write_encoder_dir(&teacher, &tiny_bert_files(5)).unwrap();
    for (flag, value) in [
        ("--dropout", "1"),
        ("--prune-until", "0"),
        ("--prune-until", "1.5"),
        ("--average", "1"),
    ] {
        let err = ranklet_err(&[
            "distill",
            "--teacher",
            teacher.to_str().unwrap(),
            "--texts",
            dir.to_str().unwrap(),
            "--out",
            dir.join("student").to_str().unwrap(),
            "--checkpoint",
            dir.join("checkpoint").to_str().unwrap(),
            "--restart",
            flag,
            value,
            "--quiet",
        ]);
        assert!(err.contains(flag), "{flag} {value}: {err}");
        assert!(!dir.join("student").exists(), "{flag} {value}");
    }
}
