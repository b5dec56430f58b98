//! What can go wrong talking to the engine: one shape for every operation (what was
//! done, to which object, the cause) and the variants a caller tells apart.

use bollard::errors::Error as BollardError;

/// A failed engine operation.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No engine answers at the address the docker CLI's rules give.
    #[error("no docker engine answers at {endpoint}; is docker running?")]
    Unreachable {
        /// The address and where it came from (`DOCKER_HOST`, a context, the default).
        endpoint: String,
        /// The connection error.
        #[source]
        source: BollardError,
    },
    /// An image build ran and one of its steps failed.
    #[error("building image {image} failed: {message}\n{log}")]
    BuildFailed {
        /// The tag being built.
        image: String,
        /// The engine's message (for a `RUN` step, its command and exit code).
        message: String,
        /// The last lines of the build output before the failure.
        log: String,
    },
    /// Any other operation.
    #[error(transparent)]
    Operation(#[from] OperationError),
}

/// An engine operation that failed: `cannot {operation} {object}`, then the cause.
#[derive(Debug, thiserror::Error)]
#[error("cannot {operation} {object}")]
pub struct OperationError {
    operation: &'static str,
    object: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// A `map_err` for `operation` ("remove", "attach to") on `object` ("container 1a2b").
pub(crate) fn failed<E>(operation: &'static str, object: String) -> impl FnOnce(E) -> EngineError
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    move |source| {
        EngineError::Operation(OperationError {
            operation,
            object,
            source: source.into(),
        })
    }
}
