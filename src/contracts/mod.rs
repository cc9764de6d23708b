//! The contracts every other layer builds on, and the only ones the browser's JavaScript shares:
//! event kinds and their weights, the scene vocabularies, the checksum rule of bundle files.
//! Nothing here imports from another module of the crate but `error`; `www/contract.js` is
//! generated from this module ([`js::contract_module`]) and a test keeps the two equal.

pub mod events;
pub mod js;
pub mod scene;

pub use events::{EventKind, NUM_EVENT_KINDS, PERSONA_DECAY, persona_weight};
pub use scene::{ContextVocabulary, DEVICE_CLASSES, HOUR_ROWS, PAGE_TYPES, SceneContext};

use sha2::{Digest, Sha256};

/// Lower-case hex sha256 of `bytes`: how a manifest, a vector cache and a checkpoint name a file's
/// content.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
