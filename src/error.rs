//! The crate's one error type. Every variant renders as one sentence that names
//! the file, revision and line where they are known; `main` prints it on
//! stderr and exits 2 (1 for a refusal).

use std::path::PathBuf;

/// A failure that stops tagback: bad input, an unreadable repository, an I/O error.
///
/// Findings (an unsafe downgrade, an irreversible migration) are *not* errors;
/// they are data in a plan or report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input that tagback cannot work with (malformed YAML, unparsable Python,
    /// an unknown revision, a bad flag combination). The message is complete.
    #[error("{0}")]
    Input(String),
    /// What was asked is refused because of a finding (an irreversible
    /// operation the script cannot run by itself): exit 1, the message on
    /// stderr, nothing on stdout — where the script would have gone.
    #[error("{0}")]
    Refused(String),
    /// A libgit2 failure with what tagback was doing at the time.
    #[error("{context}: {source}")]
    Git {
        /// What tagback was doing.
        context: String,
        /// The libgit2 error.
        source: git2::Error,
    },
    /// A filesystem failure.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl Error {
    /// Bad input, described by one complete sentence.
    pub fn input(message: impl Into<String>) -> Self {
        Error::Input(message.into())
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
