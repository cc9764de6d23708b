//! `ranklet train` with items held out of training (cold start), as a user runs it: the held-out
//! items reported against popularity, the new-item policies chosen on validation-held items,
//! the bundle that records them, and the flags that only some modes take.

mod common;

use common::{contracts_folder, ranklet_err, ranklet_ok, tiny_encoder, train};

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
    // The popularity lift: every lift of the grid swept on validation and measured on the test.
    let lift = &m["new_item_popularity"];
    let grid = ranklet::eval::new_item_choice::popularity_lift_grid().len();
    assert_eq!(lift["sweep"].as_array().unwrap().len(), grid);
    assert_eq!(lift["test_grid"].as_array().unwrap().len(), grid);
    for key in [
        "model_with_prior",
        "model_with_new_arrivals",
        "model_with_neighbour_mix",
        "model_with_popularity_lift",
        "catalogue_popularity",
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
    // The report writes f32s widened to f64, the manifest f32s as written: compare as f32.
    let f32_of = |v: &serde_json::Value| v.as_f64().unwrap() as f32;
    assert_eq!(f32_of(&new_items["mix"]["own"]), f32_of(&mix["own"]));
    assert_eq!(new_items["mix"]["neighbours"], mix["neighbours"]);
    for key in ["offset", "weight"] {
        assert_eq!(
            f32_of(&new_items["popularity"][key]),
            f32_of(&lift[key]),
            "{key}"
        );
    }
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
