//! Running a command as another user, as a user's launcher would run: the tests run as
//! root, the launcher must cope with a UID the images do not know.

use std::os::unix::fs::MetadataExt as _;
use std::process::Command;

/// `command` run as `uid:uid` (through `setpriv`), with the group of the engine's
/// socket so that it can reach the engine; its arguments, environment and working
/// directory carry over.
pub fn as_user(command: &Command, uid: u32) -> Command {
    let socket = "/var/run/docker.sock";
    let socket_group = std::fs::metadata(socket)
        .unwrap_or_else(|e| panic!("cannot stat {socket}: {e}"))
        .gid();
    let mut wrapped = Command::new("setpriv");
    wrapped
        .args([
            format!("--reuid={uid}"),
            format!("--regid={uid}"),
            format!("--groups={socket_group}"),
        ])
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    wrapped
}
