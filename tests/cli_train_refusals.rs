//! `ranklet train` refusing what it cannot run, as a user meets it: a dataset with no
//! validation user, out-of-range numeric flags (for `distill` too), and damaged or missing
//! checkpoint records on `--resume` — each a clear error naming what is wrong, never a panic.

mod common;

use common::{contracts_folder, contracts_folder_sized, ranklet_err, ranklet_ok};

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
