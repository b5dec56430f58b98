//! `healthcheck`, `denied` and `secrets`: ask a running proxy's management listener.

use std::io::Write;

use super::cli::AdminArgs;
use super::exit::Exit;
use crate::ops::admin_client::get;

/// `healthcheck`: success when `/readyz` answers 200.
pub(super) fn healthcheck(args: &AdminArgs) -> Exit {
    match get(args.admin, "/readyz", args.timeout) {
        Ok((200, _)) => Exit::Success,
        Ok((status, _)) => report_failure(&format!("/readyz answered {status}")),
        Err(err) => report_failure(&format!("cannot reach {}: {err}", args.admin)),
    }
}

/// `denied` (`/denied`) and `secrets` (`/secrets`): prints the JSON report at `path`
/// on stdout.
pub(super) fn print_report(args: &AdminArgs, path: &str) -> Exit {
    match get(args.admin, path, args.timeout) {
        Ok((200, body)) => {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{}", body.trim_end());
            Exit::Success
        }
        Ok((status, _)) => report_failure(&format!("{path} answered {status}")),
        Err(err) => report_failure(&format!("cannot reach {}: {err}", args.admin)),
    }
}

fn report_failure(message: &str) -> Exit {
    let _ = writeln!(std::io::stderr(), "sandbox-proxy: {message}");
    Exit::Denied
}
