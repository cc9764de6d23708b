//! End-to-end distillation of a tiny random teacher: pruning to the target, vocabulary pruning,
//! slicing equal to the masked model, averaging, frozen words, and exact resume after a kill.

use std::path::PathBuf;

use burn::prelude::*;

use crate::data::synthetic::product_titles;
use crate::distill::pruning::Shape;
use crate::distill::run::*;
use crate::fixtures::tiny_bert_files;
use crate::jobs::parallel::DataParallel;
use crate::jobs::{JobObserver, Silent};
use crate::text::config::BertConfig;
use crate::text::{BertEncoder, TextEmbedder};

/// Stops the run (as a kill would) in the middle of epoch `.0`.
struct KillAt(usize, usize);
impl JobObserver<DistillEpoch> for KillAt {
    fn epoch_start(&mut self, epoch: usize, _: usize) {
        self.1 = epoch;
    }
    fn batch(&mut self, _: f64) {
        if self.1 == self.0 {
            panic!("killed mid-epoch");
        }
    }
}

fn figures(log: &[DistillEpoch]) -> Vec<(usize, usize, String, String, Shape, usize)> {
    log.iter()
        .map(|e| {
            (
                e.epoch,
                e.stage,
                format!("{:.6}", e.loss),
                format!("{:.6}", e.valid_cosine),
                e.kept,
                e.params,
            )
        })
        .collect()
}

/// The tiny teacher's runs: small batches, a fast rate, pruned to 1 head × 12 neurons.
fn tiny_config(teacher: &BertConfig) -> DistillConfig {
    DistillConfig {
        batch_size: 8,
        lr: 1e-3,
        target: Shape {
            hidden: 16,
            heads: 1,
            ffn: 12,
        },
        max_len: 32,
        ..DistillConfig::for_teacher(teacher)
    }
}

/// With vocabulary words in the copies the student trains on the teacher's whole table and
/// is pruned to the catalog's pieces only when sliced: the bundle is as small, and the
/// sliced model still equals the masked one on the catalog's texts.
#[test]
fn vocabulary_words_train_the_whole_table_and_prune_it_at_the_end() {
    let _seeded = crate::fixtures::SEEDED
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let files = tiny_bert_files(12);
    let base = Device::flex();
    let titles = product_titles(24, 5);
    let (train, valid) = titles.split_at(20);
    let teacher_config = TextEmbedder::from_files(&files, &base).unwrap().config;
    let config = DistillConfig {
        epochs: 2,
        stage1_epochs: 1,
        augment: 1.0,
        vocab_words: 0.5,
        ..tiny_config(&teacher_config)
    };
    let at_start = DistillConfig {
        vocab_words: 0.0,
        ..config.clone()
    };
    let run = |c: &DistillConfig| {
        distill(
            &files,
            &base,
            &base.clone().autodiff(),
            train,
            valid,
            c,
            None,
            &DataParallel::default(),
            &mut Silent,
        )
        .unwrap()
    };
    let (late, early) = (run(&config), run(&at_start));
    assert_eq!(late.config.vocab_size, early.config.vocab_size);
    assert!(late.config.vocab_size < teacher_config.vocab_size);
    assert!(late.sliced_vs_masked < 1e-4, "{}", late.sliced_vs_masked);
    assert_ne!(late.valid_cosine, early.valid_cosine);
    // Neighbour-word copies also train on the whole table and prune it when sliced.
    let near = run(&DistillConfig {
        vocab_words: 0.0,
        neighbour_words: 0.5,
        ..config.clone()
    });
    assert_eq!(near.config.vocab_size, early.config.vocab_size);
    assert!(near.sliced_vs_masked < 1e-4, "{}", near.sliced_vs_masked);
    assert_ne!(near.valid_cosine, early.valid_cosine);
}

/// With averaging, the evaluated and sliced student is the moving average from the end of
/// pruning on (its figures differ from the last weights'), the sliced model still equals the
/// masked one, and a run killed after averaging began resumes to the same figures.
#[test]
fn averaged_weights_are_sliced_and_resume_exactly() {
    let _seeded = crate::fixtures::SEEDED
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let files = tiny_bert_files(14);
    let base = Device::flex();
    let device = base.clone().autodiff();
    let titles = product_titles(24, 5);
    let (train, valid) = titles.split_at(20);
    let teacher_config = TextEmbedder::from_files(&files, &base).unwrap().config;
    let config = DistillConfig {
        epochs: 4,
        stage1_epochs: 1,
        prune_until: 0.3,
        average: 0.9,
        ..tiny_config(&teacher_config)
    };
    let run =
        |c: &DistillConfig, cp: Option<(PathBuf, bool)>, o: &mut dyn JobObserver<DistillEpoch>| {
            distill(
                &files,
                &base,
                &device,
                train,
                valid,
                c,
                cp,
                &DataParallel::default(),
                o,
            )
        };
    let whole = run(&config, None, &mut Silent).unwrap();
    let last = run(
        &DistillConfig {
            average: 0.0,
            ..config.clone()
        },
        None,
        &mut Silent,
    )
    .unwrap();
    assert_ne!(whole.valid_cosine, last.valid_cosine);
    // Before averaging starts (epoch 1 ends before pruning does) the two runs agree.
    assert_eq!(figures(&whole.log[..1]), figures(&last.log[..1]));
    assert!(whole.sliced_vs_masked < 1e-4, "{}", whole.sliced_vs_masked);

    let dir = std::env::temp_dir().join(format!("ranklet-distill-average-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(&config, Some((dir.clone(), false)), &mut KillAt(4, 0))
    }));
    assert!(killed.is_err());
    let state = std::fs::read_to_string(dir.join("state.json")).unwrap();
    assert!(state.contains("average-0003.bpk"), "{state}");
    let resumed = run(&config, Some((dir.clone(), true)), &mut Silent).unwrap();
    assert_eq!(resumed.epochs_resumed, 3);
    assert_eq!(figures(&resumed.log), figures(&whole.log));
    assert_eq!(resumed.valid_cosine, whole.valid_cosine);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `freeze_words` keeps the word-piece table at the teacher's values while the rest learns
/// (here with the relation loss on, which must train too); without it the table moves.
#[test]
fn frozen_words_keep_the_teachers_table() {
    let _seeded = crate::fixtures::SEEDED
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let files = tiny_bert_files(13);
    let base = Device::flex();
    let teacher = TextEmbedder::from_files(&files, &base).unwrap();
    let titles = product_titles(24, 5);
    let (train, valid) = titles.split_at(20);
    let config = DistillConfig {
        epochs: 2,
        stage1_epochs: 1,
        prune: false,
        prune_vocab: false,
        freeze_words: true,
        relation_weight: 1.0,
        ..tiny_config(&teacher.config)
    };
    let run = |c: &DistillConfig| {
        distill(
            &files,
            &base,
            &base.clone().autodiff(),
            train,
            valid,
            c,
            None,
            &DataParallel::default(),
            &mut Silent,
        )
        .unwrap()
    };
    let table = |e: &BertEncoder| -> Vec<f32> {
        e.embeddings
            .word_embeddings
            .weight
            .val()
            .into_data()
            .try_to_vec()
            .unwrap()
    };
    let positions = |e: &BertEncoder| -> Vec<f32> {
        e.embeddings
            .position_embeddings
            .weight
            .val()
            .into_data()
            .try_to_vec()
            .unwrap()
    };
    let frozen = run(&config);
    assert_eq!(table(&frozen.encoder), table(&teacher.encoder));
    assert_ne!(positions(&frozen.encoder), positions(&teacher.encoder));
    let free = run(&DistillConfig {
        freeze_words: false,
        ..config
    });
    assert_ne!(table(&free.encoder), table(&teacher.encoder));
}

/// A tiny random teacher distilled with every part on (pruning to the target, vocabulary
/// pruning, two stages, FGM, the word-piece loss, replaced-word copies, the decaying rate):
/// the student ends at the target shape, the sliced model equals the masked one, and a run
/// killed mid-epoch resumes to the same figures.
#[test]
fn distils_prunes_slices_and_resumes_exactly() {
    let _seeded = crate::fixtures::SEEDED
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let files = tiny_bert_files(11);
    let base = Device::flex();
    let device = base.clone().autodiff();
    let titles = product_titles(40, 3);
    let (train, valid) = titles.split_at(32);
    let teacher_config = TextEmbedder::from_files(&files, &base).unwrap().config;
    let config = DistillConfig {
        epochs: 4,
        stage1_epochs: 2,
        prune_every: 2,
        token_weight: 0.5,
        lr_floor: 0.1,
        replace_words: 0.3,
        ..tiny_config(&teacher_config)
    };
    let whole = distill(
        &files,
        &base,
        &device,
        train,
        valid,
        &config,
        None,
        &DataParallel::default(),
        &mut Silent,
    )
    .unwrap();
    let last = whole.log.last().unwrap();
    assert_eq!(
        last.kept,
        Shape {
            hidden: 16,
            heads: 1,
            ffn: 12
        }
    );
    assert_eq!(whole.config.heads_in_layer(0), 1);
    assert_eq!(whole.config.intermediate_size, 12);
    assert!(whole.config.vocab_size < teacher_config.vocab_size);
    assert_eq!(whole.config.max_position_embeddings, 32);
    assert!(whole.config.num_params() < teacher_config.num_params());
    assert!(whole.sliced_vs_masked < 1e-4, "{}", whole.sliced_vs_masked);
    assert!(whole.valid_cosine.is_finite() && whole.valid_cosine > 0.0);
    assert!(last.train_cosine.is_finite() && last.train_cosine > 0.0);
    assert_eq!(
        whole.log.iter().map(|e| e.stage).collect::<Vec<_>>(),
        vec![1, 1, 2, 2]
    );

    let dir = std::env::temp_dir().join(format!("ranklet-distill-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        distill(
            &files,
            &base,
            &device,
            train,
            valid,
            &config,
            Some((dir.clone(), false)),
            &DataParallel::default(),
            &mut KillAt(3, 0),
        )
    }));
    assert!(killed.is_err());
    let resumed = distill(
        &files,
        &base,
        &device,
        train,
        valid,
        &config,
        Some((dir.clone(), true)),
        &DataParallel::default(),
        &mut Silent,
    )
    .unwrap();
    assert_eq!(resumed.epochs_resumed, 2);
    assert_eq!(figures(&resumed.log), figures(&whole.log));
    let other = DistillConfig {
        lr: 5e-4,
        ..config.clone()
    };
    let err = distill(
        &files,
        &base,
        &device,
        train,
        valid,
        &other,
        Some((dir.clone(), true)),
        &DataParallel::default(),
        &mut Silent,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("other settings"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
