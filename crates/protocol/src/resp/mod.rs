//! The Redis serialization protocol: requests in (multibulk arrays or inline commands) and
//! replies out, in RESP2 or RESP3 as the connection chose with `HELLO`.

mod frame;
mod inline;
mod reader;
mod reply;
mod request;

pub use frame::{Frame, Version};
pub use inline::split_args;
pub use reader::read_frame;
pub use request::{RequestDecoder, RequestLimits};

/// Why the bytes a peer sent cannot be a request. The text is what Redis answers (after `-ERR `),
/// and the connection is closed after sending it, as Redis does.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    #[error("Protocol error: expected '$', got '{0}'")]
    ExpectedBulk(char),
    #[error("Protocol error: too big mbulk count string")]
    TooBigMultibulkCount,
    #[error("Protocol error: too big bulk count string")]
    TooBigBulkCount,
    #[error("Protocol error: too big inline request")]
    TooBigInline,
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// A client that has not authenticated announced more than 10 arguments.
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    /// A client that has not authenticated announced an argument over 16 KiB.
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
    #[error("Protocol error: the request exceeds the query buffer limit of {0} bytes")]
    QueryBufferLimit(usize),
    /// Only from [`read_frame`]: a reply frame that is not valid RESP.
    #[error("Protocol error: invalid reply frame: {0}")]
    InvalidFrame(&'static str),
}
