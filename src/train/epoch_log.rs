//! One training epoch's record: what the progress line shows, the report's log holds and a
//! checkpoint keeps.

/// One epoch's figures.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    /// `pretrain` (contrastive) or `finetune` (cross-entropy).
    #[serde(default)]
    pub phase: String,
    pub loss: f64,
    pub valid_ndcg10: f64,
    pub seconds: f64,
    /// Data-parallel overhead within `seconds`: the model's device waiting for the other
    /// replicas and summing their gradients (absent on one device).
    #[serde(default, skip_serializing_if = "crate::jobs::is_zero")]
    pub exchange_seconds: f64,
    /// Within `seconds`: the validation ranking at the epoch's end (on the model's device).
    #[serde(default, skip_serializing_if = "crate::jobs::is_zero")]
    pub valid_seconds: f64,
    /// Data-parallel runs: each replica's seconds from the start of a step until its gradients
    /// were on the model's device, summed over the epoch (a slower replica shows here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replica_seconds: Vec<f64>,
}
