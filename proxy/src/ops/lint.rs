//! Reporting the allowlist's lint findings: logged by the server, printed by `check` and
//! `explain`.

use std::io::Write;
use std::path::Path;

use sandbox_policy::{Allowlist, lint::lint};

/// Logs each finding as a warning, naming the allowlist file.
pub(crate) fn log_findings(path: &Path, allowlist: &Allowlist) {
    for lint in lint(allowlist) {
        tracing::warn!(
            allowlist = %path.display(),
            line = lint.line,
            entry = &*lint.entry,
            lint = lint.kind.code(),
            "{}: {lint}",
            path.display()
        );
    }
}

/// Writes each finding as `sandbox-proxy: warning: FILE:LINE:COL: message`.
pub(crate) fn print_findings(out: &mut impl Write, path: &Path, allowlist: &Allowlist) {
    for lint in lint(allowlist) {
        let _ = writeln!(out, "sandbox-proxy: warning: {}:{lint}", path.display());
    }
}
