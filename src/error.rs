//! One error type for the library: each variant says whose problem it is (the input's, the model
//! files', or ours), so the CLI can choose its exit code and the browser can say what to fix.

/// Everything ranklet can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model folder lacks a file it needs.
    #[error("model file {file} is missing{}", hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    MissingModelFile { file: String, hint: Option<String> },
    /// A model file is present but corrupt, or does not match the rest of the model.
    #[error("model file {file} is unusable: {reason}")]
    BadModelFile { file: String, reason: String },
    /// The user's input (texts, catalog, events, flags) is wrong; `origin` says where.
    #[error("{origin}: {reason}")]
    BadInput { origin: String, reason: String },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The compute backend failed (device lost, out of memory, readback error).
    #[error("compute backend error: {0}")]
    Backend(String),
}

impl Error {
    /// Whether the caller can fix this by changing input or model files (as opposed to a fault
    /// of the program or the machine).
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::MissingModelFile { .. } | Error::BadModelFile { .. } | Error::BadInput { .. }
        )
    }

    pub fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_string(),
            source,
        }
    }

    pub fn bad_input(origin: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::BadInput {
            origin: origin.into(),
            reason: reason.into(),
        }
    }

    pub fn bad_file(file: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::BadModelFile {
            file: file.into(),
            reason: reason.into(),
        }
    }
}

/// Result with ranklet's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
