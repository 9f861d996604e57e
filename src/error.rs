//! The domain layer's error, and its one mapping to a protocol `error` frame.
//!
//! A `Rejected` error is the client's mistake: it is answered with its code and is not
//! logged as a failure. A `Store` error is ours: the client gets `internal` with no
//! detail, and the log gets the cause.

use widget_protocol::{ErrorCode, ErrorFrame};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{message}")]
    Rejected { code: ErrorCode, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn rejected(code: ErrorCode, message: impl Into<String>) -> Self {
        Error::Rejected {
            code,
            message: message.into(),
        }
    }

    /// The same answer for "does not exist" and "not yours", so ids cannot be probed.
    pub fn not_found() -> Self {
        Error::rejected(ErrorCode::NotFound, "no such conversation")
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Rejected { code, .. } => *code,
            Error::Store(_) => ErrorCode::Internal,
        }
    }

    pub fn to_frame(&self, reference: Option<String>) -> ErrorFrame {
        match self {
            Error::Rejected { code, message } => {
                ErrorFrame::new(*code, message.clone()).with_ref(reference)
            }
            Error::Store(e) => {
                tracing::error!(error = %e, "store error while serving a frame");
                ErrorFrame::new(
                    ErrorCode::Internal,
                    "the server could not complete this request; please retry",
                )
                .with_ref(reference)
            }
        }
    }
}
