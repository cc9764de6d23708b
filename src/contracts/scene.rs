//! The scene of a request (LARR's inputs): hour of day, page type, device class. The
//! vocabularies are part of the bundle's recommender config and of the browser's contract
//! (`www/contract.js`), so a page names them exactly as training did.

use crate::error::{Error, Result};

/// Page types a request can come from (row 0: unknown).
pub const PAGE_TYPES: [&str; 6] = ["unknown", "home", "product", "search", "category", "cart"];
/// Device classes (row 0: unknown).
pub const DEVICE_CLASSES: [&str; 4] = ["unknown", "desktop", "mobile", "tablet"];
/// Hour rows: 0 unknown, 1 + h for hour h of 0..24.
pub const HOUR_ROWS: usize = 25;

/// The scene inputs as the bundle manifest documents them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContextVocabulary {
    /// How the hour is read.
    pub hour: String,
    /// Page types, in row order (row 0: unknown).
    pub page: Vec<String>,
    /// Device classes, in row order (row 0: unknown).
    pub device: Vec<String>,
}

impl Default for ContextVocabulary {
    fn default() -> Self {
        Self {
            hour: "0-23: the request's local hour in the browser; the event's UTC hour in \
                   training data"
                .into(),
            page: PAGE_TYPES.iter().map(|s| s.to_string()).collect(),
            device: DEVICE_CLASSES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// The scene of one request; `None` parts are unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SceneContext {
    /// Hour of day 0..24 (local time in the browser; UTC for dataset timestamps).
    pub hour: Option<u8>,
    /// Index into [`PAGE_TYPES`].
    pub page: Option<u8>,
    /// Index into [`DEVICE_CLASSES`].
    pub device: Option<u8>,
}

impl SceneContext {
    /// The context of a request at unix time `ts` (seconds): its UTC hour.
    pub fn at_unix_time(ts: f64) -> Self {
        let hour = (ts.is_finite() && ts >= 0.0)
            .then(|| ((ts / 3600.0).floor() as i64).rem_euclid(24) as u8);
        Self {
            hour,
            ..Self::default()
        }
    }

    /// A page type by name (case-insensitive); an unknown name is an error naming it.
    pub fn page_named(name: &str) -> Result<u8> {
        index_of(&PAGE_TYPES, name, "page type")
    }

    /// A device class by name (case-insensitive); an unknown name is an error naming it.
    pub fn device_named(name: &str) -> Result<u8> {
        index_of(&DEVICE_CLASSES, name, "device class")
    }

    /// Rows of the three embeddings: (hour, page, device).
    pub fn rows(&self) -> [i64; 3] {
        [
            self.hour
                .filter(|h| *h < 24)
                .map_or(0, |h| 1 + i64::from(h)),
            self.page
                .filter(|p| usize::from(*p) < PAGE_TYPES.len())
                .map_or(0, i64::from),
            self.device
                .filter(|d| usize::from(*d) < DEVICE_CLASSES.len())
                .map_or(0, i64::from),
        ]
    }
}

fn index_of(names: &[&str], name: &str, what: &str) -> Result<u8> {
    names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name.trim()))
        .map(|i| i as u8)
        .ok_or_else(|| {
            Error::bad_input(
                "context",
                format!("unknown {what} {name:?} (one of {})", names.join(", ")),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_rows_and_names() {
        assert_eq!(SceneContext::default().rows(), [0, 0, 0]);
        let c = SceneContext::at_unix_time(3.0 * 3600.0 + 59.0);
        assert_eq!(c.hour, Some(3));
        assert_eq!(c.rows(), [4, 0, 0]);
        assert_eq!(SceneContext::at_unix_time(f64::NAN).hour, None);
        assert_eq!(SceneContext::page_named("Product").unwrap(), 2);
        assert_eq!(SceneContext::device_named("mobile").unwrap(), 2);
        let err = SceneContext::page_named("checkout")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"checkout\"") && err.contains("product"),
            "{err}"
        );
        // Out-of-range parts read as unknown.
        let odd = SceneContext {
            hour: Some(30),
            page: Some(99),
            device: Some(1),
        };
        assert_eq!(odd.rows(), [0, 0, 1]);
    }
}
