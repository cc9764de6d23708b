//! The training run's settings.

/// Training settings.
#[derive(burn::config::Config, Debug, PartialEq)]
pub struct TrainConfig {
    /// Most epochs. Default 200.
    #[config(default = 200)]
    pub epochs: usize,
    /// Windows per batch. Default 64.
    #[config(default = 64)]
    pub batch_size: usize,
    /// AdamW learning rate. Default 1e-3.
    #[config(default = 1e-3)]
    pub lr: f64,
    /// AdamW weight decay. Default 0.
    #[config(default = 0.0)]
    pub weight_decay: f32,
    /// Stop after this many epochs without a better validation NDCG@10. Default 10.
    #[config(default = 10)]
    pub patience: usize,
    /// Window length (the history cap). Default 50.
    #[config(default = 50)]
    pub max_len: usize,
    /// Shuffling and initialisation seed. Default 2020.
    #[config(default = 2020)]
    pub seed: u64,
    /// Pre-training epochs (UniSRec's sequence–item + λ·sequence–sequence contrastive losses)
    /// before fine-tuning with full-softmax cross-entropy. Default 0.
    #[config(default = 0)]
    pub pretrain_epochs: usize,
    /// λ, the weight of the sequence–sequence loss in pre-training. UniSRec: 1e-3.
    #[config(default = 1e-3)]
    pub lambda: f64,
    /// Probability of dropping each item of the augmented copy in pre-training. Default 0.2.
    #[config(default = 0.2)]
    pub item_drop: f32,
    /// Parameter-efficient fine-tuning: the sequence encoder stays frozen while fine-tuning
    /// (only the item tower — MoE adaptor, ID embedding — learns). Default false.
    #[config(default = false)]
    pub freeze_encoder: bool,
    /// CLSD: weight each training click (as a target and as a history event) by its confidence
    /// under the previous epoch's model, standardised within this many user activity groups;
    /// 0 turns CLSD off. Default 0.
    #[config(default = 0)]
    pub clsd_groups: usize,
    /// CLSD confidence spread: weights lie in (1 − s, 1 + s). Default 0.5.
    #[config(default = 0.5)]
    pub clsd_strength: f32,
    /// Weight of the two-view (title vs description) contrastive term added to the fine-tuning
    /// loss ([`TwoViews`]); 0 turns it off. Default 0.
    #[config(default = 0.0)]
    pub two_view: f64,
}

impl Default for TrainConfig {
    /// Every setting at its documented default ([`TrainConfig::new`]).
    fn default() -> Self {
        Self::new()
    }
}
