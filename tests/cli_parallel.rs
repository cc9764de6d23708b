//! Data-parallel training and distillation across processes, as an ML engineer launches them:
//! `ranklet worker` processes on loopback lend their CPU, the leader names them in `--devices`.
//! The figures equal one process's; a worker killed mid-run stops the leader with an error
//! naming it, and the run resumes from its checkpoint on the devices that remain.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{contracts_folder, contracts_folder_sized, ranklet_ok, train};
use ranklet::bundle::write_encoder_dir;
use ranklet::fixtures::tiny_bert_files;

/// A `ranklet worker` on a free loopback port, its log in a file; killed when dropped.
struct Worker {
    child: Child,
    address: String,
    log: std::path::PathBuf,
}

impl Worker {
    fn start() -> Worker {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let log = std::env::temp_dir().join(format!(
            "ranklet-worker-{}-{}.log",
            std::process::id(),
            STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let mut child = Command::new(env!("CARGO_BIN_EXE_ranklet"))
            .args(["worker", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .split_whitespace()
            .find(|w| w.starts_with("ws://127.0.0.1:"))
            .unwrap_or_else(|| panic!("no loopback address in the worker's first line: {line:?}"))
            .to_string();
        Worker {
            child,
            address,
            log,
        }
    }

    /// What the worker has written to its log so far.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn log_of(report: &serde_json::Value, key: &str) -> Vec<f64> {
    report["models"][0]["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[key].as_f64().unwrap())
        .collect()
}

fn assert_close(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: {a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() < 1e-4 * x.abs().max(1.0),
            "{what}: {a:?} vs {b:?}"
        );
    }
}

/// The leader on this process's CPU and one worker process: every epoch's loss and validation
/// NDCG@10 equal a one-process run's up to float rounding (ID mode, no dropout: nothing random
/// differs between the runs), and the test figures too.
#[test]
fn two_processes_train_the_same_model_as_one() {
    let dir = contracts_folder_sized("two-process", 60, 30, 4, 9);
    let worker = Worker::start();
    let flags = ["--mode", "id", "--dropout", "0", "--epochs", "3"];
    let one = train(&dir, &[&flags[..], &["--devices", "1"]].concat());
    let devices = format!("cpu,{}", worker.address);
    let two = train(&dir, &[&flags[..], &["--devices", &devices]].concat());
    assert_close(&log_of(&one, "loss"), &log_of(&two, "loss"), "loss");
    assert_close(
        &log_of(&one, "valid_ndcg10"),
        &log_of(&two, "valid_ndcg10"),
        "validation NDCG@10",
    );
    let test = |r: &serde_json::Value| r["models"][0]["test"]["ndcg@10"].as_f64().unwrap();
    assert_close(&[test(&one)], &[test(&two)], "test NDCG@10");
    // The worker's shard ran there whole, not operation by operation from the leader.
    assert!(
        worker.log().contains("running ranklet/train-shard/1 steps"),
        "the worker's log: {}",
        worker.log()
    );
}

/// `ranklet distill` on the tiny random teacher and a synthetic shop's texts, with `extra`
/// flags; its report.
fn distill(dir: &Path, name: &str, extra: &[&str]) -> serde_json::Value {
    let teacher = dir.join("teacher");
    if !teacher.exists() {
        write_encoder_dir(&teacher, &tiny_bert_files(5)).unwrap();
    }
    let report = dir.join(format!("{name}.json"));
    let out = dir.join(name);
    let checkpoint = dir.join(format!("checkpoint-{name}"));
    let flags = [
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
    ranklet_ok(&[&flags[..], extra].concat());
    serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap()
}

fn distill_log(report: &serde_json::Value, key: &str) -> Vec<f64> {
    report["ablations"][0]["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[key].as_f64().unwrap())
        .collect()
}

fn assert_same_student(one: &serde_json::Value, two: &serde_json::Value) {
    for key in ["loss", "valid_cosine", "train_cosine"] {
        assert_close(&distill_log(one, key), &distill_log(two, key), key);
    }
    let cosine = |r: &serde_json::Value| r["student"]["mean_cosine_to_teacher"].as_f64().unwrap();
    assert_close(&[cosine(one)], &[cosine(two)], "held-out cosine, as stored");
    assert_eq!(
        one["student"]["ffn"], two["student"]["ffn"],
        "the pruned shape"
    );
}

/// Distillation, leader plus one worker process, against one process on one device: with the
/// losses that split exactly across shards (COS-NCE against the whole batch's teacher vectors,
/// the word-piece and relation losses; stage 1 throughout), every epoch's loss and cosines and
/// the stored student's cosine are the same up to float rounding, HomoDistil's pruning (read
/// from the summed gradients) included.
#[test]
fn two_processes_distil_the_same_student_as_one() {
    let dir = contracts_folder("two-process-distill");
    let worker = Worker::start();
    let flags = [
        "--stage1-epochs",
        "3",
        "--token-weight",
        "0.5",
        "--relation-weight",
        "0.5",
    ];
    let one = distill(&dir, "one", &[&flags[..], &["--devices", "1"]].concat());
    let devices = format!("cpu,{}", worker.address);
    let two = distill(
        &dir,
        "two",
        &[&flags[..], &["--devices", &devices]].concat(),
    );
    assert_same_student(&one, &two);
    assert!(
        distill_log(&two, "exchange_seconds")
            .iter()
            .all(|s| *s > 0.0),
        "the leader's wait for the worker is logged per epoch"
    );
}

/// The whole recipe (stage 2's output losses and FGM perturbation on the worker's device
/// too): two processes equal one process cutting its batches the same way (`--devices 2`, two
/// replicas on its CPU, `--even-shards` in both) — stage 2's in-batch similarity KL compares
/// each shard's outputs with each other, so it is the cut, not the process, that it depends on.
#[test]
fn two_processes_distil_the_whole_recipe_as_one_process_with_two_replicas() {
    let dir = contracts_folder("two-process-distill-stage2");
    let worker = Worker::start();
    let flags = ["--stage1-epochs", "1", "--even-shards"];
    let one = distill(&dir, "one", &[&flags[..], &["--devices", "2"]].concat());
    let devices = format!("cpu,{}", worker.address);
    let two = distill(
        &dir,
        "two",
        &[&flags[..], &["--devices", &devices]].concat(),
    );
    assert_same_student(&one, &two);
}

/// A worker that cannot be reached is named before any work starts.
#[test]
fn an_unreachable_worker_is_named() {
    let dir = contracts_folder_sized("no-worker", 40, 30, 4, 9);
    // A port that was free a moment ago: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let devices = format!("cpu,ws://127.0.0.1:{port}");
    let out = Command::new(env!("CARGO_BIN_EXE_ranklet"))
        .args([
            "train",
            "--data",
            dir.to_str().unwrap(),
            "--mode",
            "id",
            "--quiet",
        ])
        .args(["--devices", &devices])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("ws://127.0.0.1:{port}")), "{err}");
    assert!(err.contains("ranklet worker"), "{err}");
}

/// A small ID-mode training run, checkpointed, on `devices`, whose epochs take a moment.
fn small_run(dir: &Path, checkpoint: &Path, report: &Path, devices: &str) -> Vec<String> {
    [
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
        "30",
        "--patience",
        "30",
        "--max-len",
        "20",
        "--batch-size",
        "8",
        "--quiet",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--devices",
        devices,
    ]
    .map(String::from)
    .to_vec()
}

/// A worker whose process is stopped (SIGSTOP: its connection stays open and silent, as when
/// its host vanishes without closing it) stops the leader once `--replica-timeout` has passed,
/// with an error naming the worker; the run is resumable from its checkpoint.
#[test]
fn a_silent_worker_is_named_after_the_replica_timeout() {
    let dir = contracts_folder_sized("silent-worker", 300, 60, 10, 30);
    let checkpoint = dir.join("checkpoint");
    let report = dir.join("report.json");
    let worker = Worker::start();
    let mut args = small_run(
        &dir,
        &checkpoint,
        &report,
        &format!("cpu,{}", worker.address),
    );
    args.extend(["--replica-timeout", "3"].map(String::from));
    let leader = leader_past_first_epoch(&args, &checkpoint);
    let pid = worker.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let stopped = Instant::now();
    let out = leader.wait_with_output().unwrap();
    let waited = stopped.elapsed();
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the leader went on: {err}");
    assert!(waited < Duration::from_secs(30), "stopped after {waited:?}");
    assert!(
        err.contains(&worker.address),
        "the error names the worker: {err}"
    );
    assert!(
        err.contains("--replica-timeout"),
        "the error says which limit: {err}"
    );
    assert!(
        err.contains("--resume"),
        "the error says how to go on: {err}"
    );
}

/// The leader started with `args`, once its first epoch is checkpointed in `checkpoint`.
fn leader_past_first_epoch(args: &[String], checkpoint: &Path) -> Child {
    let leader = Command::new(env!("CARGO_BIN_EXE_ranklet"))
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while epoch_in(checkpoint) < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no checkpoint after 300 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    leader
}

fn epoch_in(checkpoint: &Path) -> u64 {
    std::fs::read(checkpoint.join("state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["epoch"].as_u64())
        .unwrap_or(0)
}

/// A worker killed during a run: the leader stops within 30 s with an error naming the
/// worker's address, and `--resume` on the one device that remains finishes the run from the
/// last checkpoint.
#[test]
fn a_killed_worker_stops_the_leader_by_name_and_the_run_resumes_on_fewer_devices() {
    let dir = contracts_folder_sized("dead-worker", 300, 60, 10, 30);
    let checkpoint = dir.join("checkpoint");
    let report = dir.join("report.json");
    let mut worker = Worker::start();
    let mut args = small_run(
        &dir,
        &checkpoint,
        &report,
        &format!("cpu,{}", worker.address),
    );
    let leader = leader_past_first_epoch(&args, &checkpoint);
    worker.child.kill().unwrap(); // SIGKILL: no goodbye on the connection
    worker.child.wait().unwrap();
    let killed = Instant::now();
    let out = leader.wait_with_output().unwrap();
    let stopped_after = killed.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the leader went on without its worker: {err}"
    );
    assert!(
        stopped_after < Duration::from_secs(30),
        "stopped after {stopped_after:?}"
    );
    assert!(
        err.contains(&worker.address),
        "the error names the worker: {err}"
    );
    assert!(
        err.contains("--resume"),
        "the error says how to go on: {err}"
    );
    let done = epoch_in(&checkpoint);
    assert!((1..30).contains(&done), "checkpointed epoch {done}");
    assert!(!report.exists(), "a stopped run wrote no report");

    // The same command, resumed on the leader's own CPU only.
    let i = args.iter().position(|a| a == "--devices").unwrap();
    args.truncate(i);
    args.extend(["--devices".into(), "1".into(), "--resume".into()]);
    ranklet_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let log = report["models"][0]["log"].as_array().unwrap();
    assert!(
        log.len() as u64 > done,
        "epochs after the resume: {}",
        log.len()
    );
    assert!(
        report["models"][0]["test"]["ndcg@10"]
            .as_f64()
            .unwrap()
            .is_finite()
    );
}
