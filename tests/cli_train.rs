//! `ranklet train` as a user runs it: bundles that `ranklet eval --model` reads back, refusals
//! of bad or mismatched bundles, a run killed with SIGKILL and resumed (cold-start items:
//! cli_coldstart.rs).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{
    contracts_folder, contracts_folder_sized, ranklet_err, ranklet_ok, tiny_encoder, train,
};

/// `ranklet recommend --json` of `bundle` over `catalog` after `history` (ids, comma-separated):
/// one JSON object per recommended item.
fn recommend_json(
    bundle: &Path,
    catalog: &Path,
    cache: &Path,
    history: &str,
    k: usize,
) -> Vec<serde_json::Value> {
    let k = k.to_string();
    let out = ranklet_ok(&[
        "recommend",
        "--model",
        bundle.to_str().unwrap(),
        "--catalog",
        catalog.to_str().unwrap(),
        "--history",
        history,
        "--k",
        &k,
        "--json",
        "--cache",
        cache.to_str().unwrap(),
    ]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn eval_model(data: &Path, model: &Path) -> serde_json::Value {
    let report = data.join("eval.json");
    let _ = std::fs::remove_file(&report); // reports merge models; start each run afresh
    ranklet_ok(&[
        "eval",
        "--data",
        data.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--cache",
        data.join("vectors").to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--quiet",
    ]);
    serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap()
}

#[test]
fn a_trained_bundle_evaluates_to_the_training_figures_and_bad_bundles_are_refused() {
    let dir = contracts_folder("bundle");
    let encoder = tiny_encoder(&dir);
    let cache = dir.join("vectors");
    for mode in ["inductive", "transductive"] {
        let out = dir.join(format!("bundle-{mode}"));
        let r = train(
            &dir,
            &[
                "--mode",
                mode,
                "--text-model",
                &encoder,
                "--cache",
                cache.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
        );
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest["recommender"]["config"]["items"]["mode"], mode);
        for f in [
            "rec.safetensors",
            "items.json",
            "config.json",
            "tokenizer.json",
        ] {
            assert!(manifest["files"][f]["sha256"].is_string(), "{f} listed");
        }
        let e = eval_model(&dir, &out);
        assert_eq!(e["models"][0]["test"], r["models"][0]["test"], "{mode}");
        assert_eq!(
            e["models"][0]["test_masked"], r["models"][0]["test_masked"],
            "{mode}"
        );
    }
    // `recommend` ranks the catalog after a history: k items, none of the history, scores
    // descending, each explained by history items.
    let catalog = dir.join("catalog.jsonl");
    let ids: Vec<String> = std::fs::read_to_string(&catalog)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let history = format!("{},{},{}", ids[3], ids[7], ids[11]);
    for mode in ["inductive", "transductive"] {
        let bundle = dir.join(format!("bundle-{mode}"));
        let recs = recommend_json(&bundle, &catalog, &cache, &history, 5);
        assert_eq!(recs.len(), 5, "{mode}");
        let hist = [&ids[3], &ids[7], &ids[11]];
        for w in recs.windows(2) {
            assert!(
                w[0]["score"].as_f64() >= w[1]["score"].as_f64(),
                "{mode}: {recs:?}"
            );
        }
        for r in &recs {
            let id = r["id"].as_str().unwrap().to_string();
            assert!(
                !hist.contains(&&id),
                "{mode}: history item {id} recommended"
            );
            let because = r["because"].as_array().unwrap();
            assert!(!because.is_empty());
            assert!(because.iter().all(|b| hist.iter().any(|h| b == h.as_str())));
        }
    }
    let err = ranklet_err(&[
        "recommend",
        "--model",
        dir.join("bundle-inductive").to_str().unwrap(),
        "--catalog",
        catalog.to_str().unwrap(),
        "--history",
        "no-such-item",
    ]);
    assert!(err.contains("no-such-item"), "{err}");
    // Typed histories: one type per event, each a known type.
    for (kinds, expected) in [
        ("like", "1 types for 2 history events"),
        ("like,wishlist", "--kinds entry 2"),
    ] {
        let err = ranklet_err(&[
            "recommend",
            "--model",
            dir.join("bundle-inductive").to_str().unwrap(),
            "--catalog",
            catalog.to_str().unwrap(),
            "--history",
            "item-1,item-2",
            "--kinds",
            kinds,
        ]);
        assert!(err.contains(expected), "{kinds}: {err}");
    }

    let bundle = dir.join("bundle-transductive");

    // A transductive model ranks only the catalog it was trained on.
    let other = contracts_folder_sized("bundle-other", 30, 35, 4, 9);
    let err = ranklet_err(&[
        "eval",
        "--data",
        other.to_str().unwrap(),
        "--model",
        bundle.to_str().unwrap(),
        "--cache",
        cache.to_str().unwrap(),
    ]);
    assert!(err.contains("unknown to the model"), "{err}");

    // A recommender whose text width disagrees with its encoder is refused, naming the manifest.
    let manifest_path = bundle.join("manifest.json");
    let good = std::fs::read(&manifest_path).unwrap();
    let mut m: serde_json::Value = serde_json::from_slice(&good).unwrap();
    m["recommender"]["config"]["items"]["text_dim"] = 20.into();
    std::fs::write(&manifest_path, serde_json::to_vec(&m).unwrap()).unwrap();
    let args = [
        "eval",
        "--data",
        dir.to_str().unwrap(),
        "--model",
        bundle.to_str().unwrap(),
        "--cache",
        cache.to_str().unwrap(),
    ];
    let err = ranklet_err(&args);
    assert!(
        err.contains("manifest.json") && err.contains("20-wide text vectors"),
        "{err}"
    );
    std::fs::write(&manifest_path, &good).unwrap();

    // A damaged rec.safetensors is refused by its checksum, naming the file.
    let weights = bundle.join("rec.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&weights, &bytes).unwrap();
    let err = ranklet_err(&args);
    assert!(
        err.contains("rec.safetensors") && err.contains("sha256"),
        "{err}"
    );
}

#[test]
fn a_run_killed_with_sigkill_resumes_to_the_same_figures() {
    let dir = contracts_folder_sized("resume", 300, 60, 10, 30);
    let report = dir.join("killed.json");
    let checkpoint = dir.join("checkpoint");
    let mut args: Vec<String> = [
        "train",
        "--data",
        dir.to_str().unwrap(),
        "--mode",
        "id",
        "--hidden",
        "32",
        "--heads",
        "2",
        "--inner",
        "32",
        "--layers",
        "1",
        "--epochs",
        "12",
        "--patience",
        "12",
        "--max-len",
        "20",
        "--batch-size",
        "8",
        "--quiet",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ranklet"))
        .args(&args)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once two epochs are committed (the state file names the last complete epoch).
    let state = checkpoint.join("state.json");
    let started = std::time::Instant::now();
    loop {
        let epoch = std::fs::read(&state)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["epoch"].as_u64())
            .unwrap_or(0);
        if epoch >= 2 {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 300,
            "no checkpoint after 300 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run must still be going when it is killed"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!report.exists(), "a killed run wrote no report");

    // Without --resume, the earlier run's checkpoint is not silently overwritten.
    let refused = ranklet_err(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(refused.contains("--resume"), "{refused}");

    args.push("--resume".into());
    ranklet_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let resumed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();

    // The same run, never interrupted.
    args.pop();
    args.push("--restart".into());
    let fresh_report = dir.join("fresh.json");
    let i = args.iter().position(|a| a == "--report").unwrap();
    args[i + 1] = fresh_report.to_str().unwrap().into();
    ranklet_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let fresh: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&fresh_report).unwrap()).unwrap();
    let (a, b) = (&resumed["models"][0], &fresh["models"][0]);
    assert_eq!(a["test"], b["test"]);
    assert_eq!(a["valid"], b["valid"]);
    let losses = |m: &serde_json::Value| -> Vec<f64> {
        m["log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["loss"].as_f64().unwrap())
            .collect()
    };
    assert_eq!(losses(a), losses(b));
}

/// `--devices 2` splits each batch across two replicas (two handles on the CPU here; GPUs
/// cannot be tested on this machine) and sums their gradients: without dropout or gate noise
/// (ID mode) it trains the same model as one device, up to float rounding.
#[test]
fn data_parallel_training_matches_one_device() {
    let dir = contracts_folder("devices");
    let losses = |devices: &str| -> Vec<f64> {
        let r = train(
            &dir,
            &["--mode", "id", "--dropout", "0", "--devices", devices],
        );
        r["models"][0]["log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["loss"].as_f64().unwrap())
            .collect()
    };
    let one = losses("1");
    let two = losses("2");
    assert_eq!(one.len(), two.len());
    for (a, b) in one.iter().zip(&two) {
        assert!(
            (a - b).abs() < 1e-4 * a.abs().max(1.0),
            "{one:?} vs {two:?}"
        );
    }
    ranklet_err(&["train", "--data", dir.to_str().unwrap(), "--devices", "0"]);
}

/// Teacher training proper: `--tune-text-layers 1` tunes the encoder's top layer with the
/// recommender (here from an `--init` bundle, `--epochs 0`); the bundle carries the tuned
/// encoder, and `eval` of that bundle reproduces the figures the run reported.
#[test]
fn text_tuning_writes_a_bundle_with_the_tuned_encoder() {
    let dir = contracts_folder("text-tuning");
    let encoder = tiny_encoder(&dir);
    let cache = dir.join("vectors");
    let first = dir.join("bundle-first");
    let common = [
        "--mode",
        "inductive",
        "--text-model",
        &encoder,
        "--cache",
        cache.to_str().unwrap(),
    ];
    let mut args = common.to_vec();
    args.extend(["--out", first.to_str().unwrap()]);
    let r0 = train(&dir, &args);
    // --init with --epochs 0 is that recommender, unchanged (its learned biases included).
    let mut args = common.to_vec();
    args.extend(["--init", first.to_str().unwrap(), "--epochs", "0"]);
    let same = train(&dir, &args);
    assert_eq!(same["models"][0]["test"], r0["models"][0]["test"]);
    let tuned = dir.join("bundle-tuned");
    let mut args = common.to_vec();
    args.extend([
        "--init",
        first.to_str().unwrap(),
        "--epochs",
        "0",
        "--tune-text-layers",
        "1",
        "--text-epochs",
        "2",
        "--text-lr",
        "1e-2",
        "--out",
        tuned.to_str().unwrap(),
    ]);
    let r = train(&dir, &args);
    let t = &r["models"][0]["text_tuning"];
    assert_eq!(t["layers"], 1);
    assert!(t["log"].as_array().unwrap().len() >= 2, "{t}");
    let sha = |d: &Path| {
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("manifest.json")).unwrap()).unwrap();
        m["files"]["model.safetensors"]["sha256"].clone()
    };
    if t["valid_ndcg10_best"].as_f64() > t["valid_ndcg10_start"].as_f64() {
        assert_ne!(
            sha(&first),
            sha(&tuned),
            "a better epoch was kept: the encoder changed"
        );
    }
    let e = eval_model(&dir, &tuned);
    assert_eq!(e["models"][0]["test"], r["models"][0]["test"]);
    // Text tuning needs text-only items.
    let mut args = common.to_vec();
    args[1] = "transductive";
    args.extend(["--tune-text-layers", "1"]);
    let mut full = vec!["train", "--data", dir.to_str().unwrap()];
    full.extend(args);
    let err = ranklet_err(&full);
    assert!(err.contains("--tune-text-layers"), "{err}");
}

/// `--persona` and `--two-view` as a user runs them: the persona's vocabulary (the catalog's
/// genres) lands in the bundle's manifest and `recommend` reads it back; the two-view term
/// needs items with a description and says so when there are none.
#[test]
fn persona_and_two_view_terms_from_the_command_line() {
    let dir = contracts_folder("persona");
    let encoder = tiny_encoder(&dir);
    let cache = dir.join("vectors");
    let common = ["--text-model", &encoder, "--cache", cache.to_str().unwrap()];
    let err = ranklet_err(
        &[
            &[
                "train",
                "--data",
                dir.to_str().unwrap(),
                "--quiet",
                "--restart",
                "--checkpoint",
                dir.join("ck-refused").to_str().unwrap(),
                "--two-view",
                "0.5",
            ][..],
            &common[..],
        ]
        .concat(),
    );
    assert!(
        err.contains("--two-view") && err.contains("0 items with both a title and a description"),
        "{err}"
    );
    // Descriptions for every item: the catalog's `text`.
    let catalog = dir.join("catalog.jsonl");
    let described: String = std::fs::read_to_string(&catalog)
        .unwrap()
        .lines()
        .map(|l| {
            let mut item: serde_json::Value = serde_json::from_str(l).unwrap();
            let genre = item["genres"][0].as_str().unwrap().to_string();
            item["text"] = format!("Something every {genre} fan wants.").into();
            format!("{item}\n")
        })
        .collect();
    std::fs::write(&catalog, described).unwrap();
    let out = dir.join("bundle");
    let r = train(
        &dir,
        &[
            &[
                "--persona",
                "--two-view",
                "0.5",
                "--out",
                out.to_str().unwrap(),
            ][..],
            &common[..],
        ]
        .concat(),
    );
    assert_eq!(r["models"][0]["train"]["two_view"], 0.5);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let facets = &manifest["recommender"]["config"]["signals"]["persona"]["facets"];
    assert!(
        facets
            .as_array()
            .is_some_and(|f| f.iter().any(|g| g == "coffee")),
        "{facets}"
    );
    let e = eval_model(&dir, &out);
    assert_eq!(e["models"][0]["test"], r["models"][0]["test"]);
}

/// `because` is what made the model score the item: in a shop where item-13 always follows
/// item-0, a history of three kitchen items and then item-0 recommends item-13 because of
/// item-0 (its removal lowers item-13's score the most), not because of the three kitchen items
/// before it.
#[test]
fn because_names_the_event_the_recommended_item_was_planted_to_follow() {
    let dir = std::env::temp_dir().join(format!("ranklet-planted-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ds = ranklet::data::synthetic::synthetic_dataset(1, 36, 3, 3, 1);
    let mut catalog = String::new();
    for item in &ds.items {
        catalog += &format!(
            "{}\n",
            serde_json::json!({"id": item.id, "title": item.text, "category": item.facets[0]})
        );
    }
    std::fs::write(dir.join("catalog.jsonl"), catalog).unwrap();
    // Users browse one topic (item i's topic is i % 6); in every sequence, somewhere,
    // item-0 (coffee) is followed at once by item-13 (running).
    let mut rng = ranklet::rng::SplitMix(4);
    let mut events = String::new();
    for u in 0..150 {
        let topic = u % 6;
        let len = 6 + (rng.next_f32() * 5.0) as usize;
        let mut seq: Vec<usize> = (0..len)
            .map(|_| topic + 6 * ((rng.next_f32() * 6.0) as usize).min(5))
            .collect();
        let at = ((rng.next_f32() * (len - 1) as f32) as usize).min(len - 2);
        seq.splice(at..at, [0, 13]);
        for (t, item) in seq.iter().enumerate() {
            events += &format!(
                "{}\n",
                serde_json::json!({"user": format!("u{u}"), "item": format!("item-{item}"), "ts": t})
            );
        }
    }
    std::fs::write(dir.join("events.jsonl"), events).unwrap();
    let out = dir.join("bundle");
    let encoder = tiny_encoder(&dir);
    train(
        &dir,
        &[
            "--mode",
            "transductive",
            "--text-model",
            &encoder,
            "--cache",
            dir.join("vectors").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--epochs",
            "12",
        ],
    );
    let recs = recommend_json(
        &out,
        &dir.join("catalog.jsonl"),
        &dir.join("vectors"),
        "item-4,item-10,item-16,item-0",
        3,
    );
    assert_eq!(
        recs[0]["id"], "item-13",
        "the planted follower first: {recs:?}"
    );
    assert_eq!(recs[0]["because"][0], "item-0", "{recs:?}");
}
