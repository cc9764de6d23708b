//! `ranklet train` as a user runs it: bundles that `ranklet eval --model` reads back, refusals
//! of bad or mismatched bundles, a run killed with SIGKILL and resumed, cold-start items.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{contracts_folder, contracts_folder_sized, ranklet_err, ranklet_ok, train};
use ranklet::bundle::write_encoder_dir;
use ranklet::fixtures::tiny_bert_files;

fn tiny_encoder(dir: &Path) -> String {
    let model = dir.join("tiny-encoder");
    write_encoder_dir(&model, &tiny_bert_files(3)).unwrap();
    model.to_str().unwrap().to_string()
}

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

#[test]
fn cold_start_items_are_held_out_and_reported_against_popularity() {
    let dir = contracts_folder("coldstart");
    let encoder = tiny_encoder(&dir);
    let cache = dir.join("vectors");
    // 10 % of the items held out, with the mode's own arguments.
    let held_out = |mode: &[&str]| {
        let common = [
            "--text-model",
            &encoder,
            "--cache",
            cache.to_str().unwrap(),
            "--holdout-items",
            "0.1",
        ];
        train(&dir, &[mode, &common[..]].concat())
    };
    let r = held_out(&["--mode", "inductive"]);
    let cold = &r["models"][0]["cold_start"];
    assert_eq!(cold["held_out_items"], 3, "10 % of 30 items");
    assert!(cold["test_users"].as_u64().unwrap() <= 40);
    for side in ["model", "popularity"] {
        let v = cold[side]["recall@10"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{side}: {v}");
    }
    // The target among the 3 new items only, per test user, against popularity and random.
    let ranks = cold["ranks_among_new"].as_array().unwrap();
    assert_eq!(ranks.len() as u64, cold["test_users"].as_u64().unwrap());
    assert!(ranks.iter().all(|r| r.as_u64().unwrap() < 3), "{ranks:?}");
    for key in ["median_rank_among_new", "popularity_median_rank_among_new"] {
        assert!(cold[key].as_u64().unwrap() < 3, "{key}: {}", cold[key]);
    }
    assert_eq!(cold["random_median_rank_among_new"], 1.0);
    assert!((cold["random_recall@10"].as_f64().unwrap() - 10.0 / 30.0).abs() < 1e-9);
    let err = ranklet_err(&[
        "train",
        "--data",
        dir.to_str().unwrap(),
        "--holdout-items",
        "1.5",
    ]);
    assert!(err.contains("--holdout-items"), "{err}");
    // Text + ID with ID dropout: the held-out items are ranked by their text, with no ID row.
    let r = held_out(&["--mode", "transductive", "--id-dropout", "0.5"]);
    let cold = &r["models"][0]["cold_start"];
    assert_eq!(cold["held_out_items"], 3);
    let ranks = cold["ranks_among_new"].as_array().unwrap();
    assert!(ranks.iter().all(|r| r.as_u64().unwrap() < 3), "{ranks:?}");
    // Only a model with IDs and text can leave its IDs out.
    let err = ranklet_err(&[
        "train",
        "--data",
        dir.to_str().unwrap(),
        "--mode",
        "inductive",
        "--id-dropout",
        "0.5",
    ]);
    assert!(
        err.contains("--id-dropout") && err.contains("transductive"),
        "{err}"
    );
    // Logit adjustment is measured the same way; a bundle cannot carry it yet.
    let r = held_out(&["--mode", "inductive", "--popularity-logits"]);
    let cold = &r["models"][0]["cold_start"];
    assert_eq!(cold["held_out_items"], 3);
    assert_eq!(r["models"][0]["popularity_logits"], true);
    let err = ranklet_err(&[
        "train",
        "--data",
        dir.to_str().unwrap(),
        "--popularity-logits",
        "--out",
        dir.join("bundle").to_str().unwrap(),
    ]);
    assert!(
        err.contains("--popularity-logits") && err.contains("--out"),
        "{err}"
    );
    assert!(!dir.join("bundle").exists());
}

/// `--holdout-valid-items`: a second item holdout whose validation examples stay; on it the
/// three new-item policies are chosen and reported, and the bundle records the chosen mix and
/// every id it held out, which `ranklet eval` and `recommend` then place by that mix.
#[test]
fn validation_held_items_choose_the_new_item_policies_and_the_bundle_records_them() {
    let dir = contracts_folder("coldstart-valid");
    let encoder = tiny_encoder(&dir);
    let bundle = dir.join("bundle");
    let cache = dir.join("vectors");
    let r = train(
        &dir,
        &[
            "--mode",
            "inductive",
            "--text-model",
            &encoder,
            "--cache",
            cache.to_str().unwrap(),
            "--holdout-items",
            "0.1",
            "--holdout-valid-items",
            "0.2",
            "--out",
            bundle.to_str().unwrap(),
        ],
    );
    let m = &r["models"][0];
    let prior_sweep = m["new_item_prior"]["sweep"].as_array().unwrap();
    assert_eq!(prior_sweep.len(), ranklet::eval::NEW_ITEM_OFFSETS.len());
    // Each offset with the new targets it finds, which the choice reads.
    assert!(
        prior_sweep
            .iter()
            .all(|s| s["valid_new_target_recall@10"].as_f64().is_some()),
        "{prior_sweep:?}"
    );
    assert_eq!(
        m["new_item_prior"]["valid_new_items"], 6,
        "20 % of 30 items"
    );
    assert_eq!(m["new_arrivals"]["sweep"].as_array().unwrap().len(), 4);
    let mix = &m["neighbour_mix"];
    assert_eq!(mix["sweep"].as_array().unwrap().len(), 19);
    assert_eq!(mix["test_grid"].as_array().unwrap().len(), 19);
    for key in [
        "model_with_prior",
        "model_with_new_arrivals",
        "model_with_neighbour_mix",
    ] {
        let v = m["cold_start"][key]["recall@10"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key}: {v}");
    }
    // The new-arrivals order the product shows (the chosen mix's vectors), per cold-start
    // user, among the 3 test-held items.
    let mixed = m["cold_start"]["ranks_among_new_with_neighbour_mix"]
        .as_array()
        .unwrap();
    assert_eq!(
        mixed.len() as u64,
        m["cold_start"]["test_users"].as_u64().unwrap()
    );
    assert!(mixed.iter().all(|r| r.as_u64().unwrap() < 3), "{mixed:?}");
    // Every mix of the grid records them, for a choice made over several runs.
    assert!(mix["test_grid"].as_array().unwrap().iter().all(|g| {
        g["cold_start_ranks_among_new"].as_array().map(Vec::len) == Some(mixed.len())
    }));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    let new_items = &manifest["recommender"]["config"]["new_items"];
    assert_eq!(
        new_items["untrained"].as_array().unwrap().len(),
        9,
        "3 + 6 held out"
    );
    assert_eq!(new_items["mix"]["own"], mix["own"]);
    assert_eq!(new_items["mix"]["neighbours"], mix["neighbours"]);
    // The bundle evaluates and recommends with its held-out items placed by the mix.
    let report = dir.join("eval.json");
    ranklet_ok(&[
        "eval",
        "--data",
        dir.to_str().unwrap(),
        "--model",
        bundle.to_str().unwrap(),
        "--cache",
        cache.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--quiet",
    ]);
    let untrained = new_items["untrained"][0].as_str().unwrap().to_string();
    let trained: Vec<String> =
        serde_json::from_slice::<Vec<String>>(&std::fs::read(bundle.join("items.json")).unwrap())
            .unwrap()
            .into_iter()
            .filter(|id| {
                !new_items["untrained"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|u| u == id.as_str())
            })
            .collect();
    let out = ranklet_ok(&[
        "recommend",
        "--model",
        bundle.to_str().unwrap(),
        "--data",
        dir.to_str().unwrap(),
        "--history",
        &format!("{},{}", trained[0], untrained),
        "--k",
        "30",
        "--json",
        "--cache",
        cache.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).lines().count() >= 20);
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

/// Every user with 2 events or fewer: no validation user to choose an epoch on — a clear
/// error naming the folder (exit 2), not a panic; `eval` reports zeros for no test user.
#[test]
fn a_dataset_without_validation_users_is_refused() {
    let dir = contracts_folder_sized("short-users", 12, 10, 1, 2);
    let d = dir.to_str().unwrap();
    let ck = dir.join("ck");
    let err = ranklet_err(&[
        "train",
        "--data",
        d,
        "--mode",
        "id",
        "--epochs",
        "1",
        "--quiet",
        "--restart",
        "--checkpoint",
        ck.to_str().unwrap(),
    ]);
    assert!(
        err.contains(d) && err.contains("no user has 3 or more events"),
        "{err}"
    );
    let out = ranklet_ok(&["eval", "--data", d]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("0.0000"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Numeric flags that would panic deep inside burn, or make a run diverge from its first step
/// (a NaN, infinite or zero rate), are refused when the arguments are parsed, naming the flag
/// (exit 2, clap's usage error), for `train` and `distill`. (A run that diverges later stops
/// naming its epoch: `train::run::tests::a_diverged_run_stops_naming_the_epoch`.)
#[test]
fn out_of_range_shape_flags_are_refused_at_parse_time() {
    let dir = contracts_folder("flags");
    let d = dir.to_str().unwrap();
    for (flag, value) in [
        ("--dropout", "1.5"),
        ("--hidden", "0"),
        ("--inner", "0"),
        ("--heads", "0"),
        ("--dropout", "nan"),
        ("--lr", "nan"),
        ("--lr", "0"),
        ("--temperature", "0"),
        ("--weight-decay", "nan"),
        ("--item-drop", "2"),
        ("--holdout-items", "1"),
    ] {
        let err = ranklet_err(&["train", "--data", d, "--mode", "id", flag, value]);
        assert!(
            err.contains(flag) && !err.contains("panicked"),
            "{flag} {value}: {err}"
        );
    }
    for (flag, value) in [
        ("--lr=-1", ""),
        ("--augment", "1.5"),
        ("--dropout", "1"),
        ("--max-len", "0"),
        ("--batch-size", "0"),
        ("--lr-floor", "inf"),
    ] {
        let args: Vec<&str> = ["distill", "--texts", d, flag, value]
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        let err = ranklet_err(&args);
        let name = flag.split('=').next().unwrap();
        assert!(
            err.contains(name) && !err.contains("panicked"),
            "distill {flag} {value}: {err}"
        );
    }
    for (args, flag) in [
        (vec!["eval", "--data", d, "--max-len", "0"], "--max-len"),
        (
            vec!["bench", "embed", "--model", d, "--texts", "0"],
            "--texts",
        ),
        (
            vec!["bench", "embed", "--model", d, "--batch", "0"],
            "--batch",
        ),
    ] {
        let err = ranklet_err(&args);
        assert!(
            err.contains(flag) && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Checkpoint records are checksummed in `state.json`: a bit-flipped record is refused on
/// `--resume` naming it (exit 2), and so is a missing one, instead of resuming to other figures.
#[test]
fn a_damaged_or_missing_checkpoint_record_is_refused_by_name() {
    let dir = contracts_folder("damaged-checkpoint");
    let d = dir.to_str().unwrap();
    let ck = dir.join("ck");
    let c = ck.to_str().unwrap();
    let base = [
        "train",
        "--data",
        d,
        "--mode",
        "id",
        "--epochs",
        "2",
        "--hidden",
        "16",
        "--heads",
        "2",
        "--inner",
        "32",
        "--layers",
        "1",
        "--max-len",
        "10",
        "--batch-size",
        "16",
        "--quiet",
        "--checkpoint",
        c,
    ];
    let mut first = base.to_vec();
    first.push("--restart");
    ranklet_ok(&first);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ck.join("state.json")).unwrap()).unwrap();
    let model = state["model_file"].as_str().unwrap().to_string();
    assert!(state["checksums"][&model].is_string(), "{state}");
    let mut resume = base.to_vec();
    resume.push("--resume");
    // Logit adjustment changes what the weights mean: a checkpoint without it does not resume
    // with it.
    let mut adjusted = resume.clone();
    adjusted.push("--popularity-logits");
    let err = ranklet_err(&adjusted);
    assert!(err.contains("other settings"), "{err}");
    let path = ck.join(&model);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let err = ranklet_err(&resume);
    assert!(err.contains(&model) && err.contains("sha256"), "{err}");
    std::fs::remove_file(&path).unwrap();
    let err = ranklet_err(&resume);
    assert!(err.contains(&model) && err.contains("missing"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
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
