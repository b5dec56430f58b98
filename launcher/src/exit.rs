//! Named exit codes, following the docker CLI's convention so that scripts written for
//! `docker run` read the launcher's status the same way.

/// A process exit status chosen by the launcher.
///
/// The agent's own status passes through unchanged; the launcher's failures use the values
/// `docker run` uses for the same situations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus(pub u8);

impl ExitStatus {
    /// Everything worked (also `--help` and `--version`).
    pub const SUCCESS: Self = Self(0);
    /// The engine answered with an error, or the sandbox could not be set up or started
    /// (docker's 125). Also used for invalid arguments and settings, as docker does.
    pub const LAUNCHER_FAILED: Self = Self(125);
    /// The agent's command exists but cannot be executed (docker's 126).
    pub const CANNOT_EXECUTE: Self = Self(126);
    /// The agent's command was not found in the image (docker's 127).
    pub const NOT_FOUND: Self = Self(127);

    /// The status a process killed by `signal` reports by shell convention (128 + n).
    pub(crate) fn from_signal(signal: i32) -> Self {
        Self(u8::try_from(128 + signal.clamp(0, 127)).unwrap_or(u8::MAX))
    }

    /// The status for a container's exit code, which the engine reports as a 64-bit value;
    /// values outside 0..=255 are reduced the way a POSIX shell would (modulo 256).
    pub(crate) fn from_container_code(code: i64) -> Self {
        Self(u8::try_from(code.rem_euclid(256)).unwrap_or(u8::MAX))
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        std::process::ExitCode::from(status.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_codes_reduce_like_a_shell() {
        assert_eq!(ExitStatus::from_container_code(0), ExitStatus(0));
        assert_eq!(ExitStatus::from_container_code(3), ExitStatus(3));
        assert_eq!(ExitStatus::from_container_code(256), ExitStatus(0));
        assert_eq!(ExitStatus::from_container_code(-1), ExitStatus(255));
    }

    #[test]
    fn signals_map_to_128_plus_n() {
        assert_eq!(ExitStatus::from_signal(2), ExitStatus(130));
        assert_eq!(ExitStatus::from_signal(15), ExitStatus(143));
    }
}
