//! `scripts/gpu-check.sh --cpu-only`, the dry run of the GPU check (issue 25), on this machine:
//! every step runs on the CPU (tiny encoder, synthetic shop; the teacher for parity) and the
//! report has each figure (a worker's training step included), so the script is ready for the
//! first lent GPU. Needs the teacher
//! files (`./build.sh setup`), as the parity tests do.

use std::process::Command;

#[test]
fn the_gpu_check_dry_run_measures_every_step_on_the_cpu() {
    let out = std::env::temp_dir().join(format!("ranklet-gpu-check-{}.json", std::process::id()));
    let run = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gpu-check.sh"))
        .args([
            "--cpu-only",
            "--out",
            out.to_str().unwrap(),
            "--bin",
            env!("CARGO_BIN_EXE_ranklet"),
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(r["dry_run"], true);
    assert_eq!(r["devices"], serde_json::json!(["cpu"]));
    let cpu = &r["per_device"]["cpu"];
    for who in ["teacher_texts_per_s", "student_texts_per_s"] {
        for batch in ["1", "32"] {
            assert!(
                cpu[who][batch].as_f64().unwrap() > 0.0,
                "{who} {batch}: {cpu}"
            );
        }
    }
    assert!(
        cpu["teacher_parity_min_cosine"].as_f64().unwrap() >= 0.9999,
        "{cpu}"
    );
    assert!(cpu["train_epoch_seconds"].as_f64().unwrap() > 0.0);
    assert!(cpu["distill_epoch_seconds"].as_f64().unwrap() > 0.0);
    assert!(r["probe"]["cpu"].as_str().unwrap().contains("cores"));
    // The worker-side step, on a worker beside the leader on the same device.
    let worker = &r["worker_step"];
    assert_eq!(worker["ok"], true, "{worker}");
    assert_eq!(worker["steps_ran_on_the_worker"], true, "{worker}");
    assert!(worker["train_epoch_seconds"].as_f64().unwrap() > 0.0);
    let _ = std::fs::remove_file(out);
}
