//! `ranklet index` on a bundle trained here (tiny encoder, synthetic shop): the index evaluates
//! like the model's own ranking within int8 rounding, a malformed catalogue line is refused
//! naming it, and an index of another model is refused by `eval --index`.

mod common;

use common::{contracts_folder, ranklet_err, ranklet_ok, train};
use ranklet::bundle::write_encoder_dir;
use ranklet::fixtures::tiny_bert_files;

#[test]
fn index_a_trained_bundle_and_evaluate_with_it() {
    let dir = contracts_folder("index");
    let encoder = dir.join("tiny-encoder");
    write_encoder_dir(&encoder, &tiny_bert_files(3)).unwrap();
    let (bundle, cache) = (dir.join("bundle"), dir.join("vectors"));
    train(
        &dir,
        &[
            "--mode",
            "inductive",
            "--text-model",
            encoder.to_str().unwrap(),
            "--cache",
            cache.to_str().unwrap(),
            "--out",
            bundle.to_str().unwrap(),
        ],
    );
    let (d, b, c) = (
        dir.to_str().unwrap(),
        bundle.to_str().unwrap(),
        cache.to_str().unwrap(),
    );
    let index = dir.join("index");
    let i = index.to_str().unwrap();
    let out = ranklet_ok(&["index", "--model", b, "--data", d, "--out", i, "--quiet"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("30 embedded"), "{said}");
    let eval = |extra: &[&str]| -> serde_json::Value {
        let report = dir.join("eval.json");
        let _ = std::fs::remove_file(&report);
        let mut args = vec!["eval", "--data", d, "--model", b, "--cache", c, "--quiet"];
        args.extend_from_slice(&["--report", report.to_str().unwrap()]);
        args.extend_from_slice(extra);
        ranklet_ok(&args);
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap()
    };
    let exact = eval(&[]);
    let indexed = eval(&["--index", i]);
    let ndcg = |r: &serde_json::Value| r["models"][0]["test"]["ndcg@10"].as_f64().unwrap();
    assert!(
        (ndcg(&exact) - ndcg(&indexed)).abs() <= 0.02 * ndcg(&exact).max(1e-3),
        "{} vs {}",
        ndcg(&exact),
        ndcg(&indexed)
    );
    // Unchanged catalogue: nothing embedded again.
    let out = ranklet_ok(&["index", "--model", b, "--data", d, "--out", i, "--update"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 embedded, 30 unchanged"));

    // recommend: k 0 is refused naming the flag; spaces around ids are not part of them; a
    // history covering the catalogue says so instead of printing nothing.
    let ids: Vec<String> = std::fs::read_to_string(dir.join("catalog.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let err = ranklet_err(&[
        "recommend",
        "--model",
        b,
        "--data",
        d,
        "--cache",
        c,
        "--history",
        &ids[0],
        "--k",
        "0",
    ]);
    assert!(err.contains("--k"), "{err}");
    let spaced = format!(" {} , {}", ids[0], ids[1]);
    let out = ranklet_ok(&[
        "recommend",
        "--model",
        b,
        "--data",
        d,
        "--cache",
        c,
        "--history",
        &spaced,
        "--json",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 10);
    let all = ids.join(",");
    let out = ranklet_ok(&[
        "recommend",
        "--model",
        b,
        "--data",
        d,
        "--cache",
        c,
        "--history",
        &all,
    ]);
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to recommend"));

    // A malformed catalogue line is refused naming the file and the line.
    let bad = dir.join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"id\":\"a\",\"title\":\"red shoe\"}\n{\"id\":\"b\"}\n",
    )
    .unwrap();
    let other = dir.join("other-index");
    let err = ranklet_err(&[
        "index",
        "--model",
        b,
        "--catalog",
        bad.to_str().unwrap(),
        "--out",
        other.to_str().unwrap(),
    ]);
    assert!(
        err.contains("bad.jsonl line 2") && err.contains("title"),
        "{err}"
    );
    assert!(!other.join("manifest.json").exists());

    // An index of another model (another seed) is refused by name.
    let second = dir.join("bundle-2");
    train(
        &dir,
        &[
            "--mode",
            "inductive",
            "--text-model",
            encoder.to_str().unwrap(),
            "--cache",
            c,
            "--seed",
            "9",
            "--out",
            second.to_str().unwrap(),
        ],
    );
    let err = ranklet_err(&[
        "eval",
        "--data",
        d,
        "--model",
        second.to_str().unwrap(),
        "--cache",
        c,
        "--index",
        i,
        "--quiet",
    ]);
    assert!(err.contains("built with model"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
