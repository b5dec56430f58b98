//! The allowlist belongs to the launcher, tried as a non-root UID: an allowlist the agent
//! could change through a read-write mount (below the working directory, where renaming
//! its parent would put a file of the agent's in its place; behind the symlinked
//! `~/.agents -> ~/dotfiles/agents` layout) is refused unless `--force`; the old default
//! that a run without the proxy wrote is not used silently, and no run may write the new
//! one; and editing the allowlist on
//! the host during a run (in place, and by rename as editors save) changes what the
//! proxy allows, while an invalid edit keeps the last good policy and is reported once.

use std::io::{BufRead as _, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_sandbox_e2e::{Upstream, as_user, eventually, proxy_image};

use crate::support::{Launcher, USER, chown_to_user, launcher_objects, run};

/// How long a change of the allowlist may take to reach the proxy before the test fails
/// (the launcher needs far less; the test prints what it measured).
const TAKES_EFFECT: Duration = Duration::from_secs(5);

/// The sidecar image without an allowlist option: the default is used.
fn proxy_default_allowlist() -> Vec<String> {
    vec![
        "--proxy".to_owned(),
        "--proxy-image".to_owned(),
        proxy_image().to_owned(),
    ]
}

/// Options plus `--allowed-domains FILE`.
fn with_allowlist(mut options: Vec<String>, file: &Path) -> Vec<String> {
    options.extend(["--allowed-domains".to_owned(), file.display().to_string()]);
    options
}

/// Writes `text` to `path` below `owned` (created as needed), all owned by the user the tests run the launcher as.
fn user_file(owned: &Path, path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    chown_to_user(owned);
}

/// Asserts that a launcher run was refused before anything started, naming `words`.
fn assert_refused(launcher: &Launcher, output: &std::process::Output, words: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(125), "not refused:\n{stderr}");
    for word in words {
        assert!(stderr.contains(word), "no {word:?} in:\n{stderr}");
    }
    assert!(launcher_objects(&launcher.scope).is_empty());
}

#[test]
fn an_allowlist_below_a_read_write_mount_is_refused() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let launcher = launcher.owned_by_user();
    // Below the working directory: the agent could rename `policy/` and write a
    // `policy/allowed_domains.txt` of its own, or just edit the file.
    let inside = launcher.work.join("policy/allowed_domains.txt");
    user_file(&launcher.work, &inside, "allowed.test\n");
    let options = with_allowlist(proxy_default_allowlist(), &inside);
    let output = run(launcher.shell_as_user(&options, &["true"]));
    assert_refused(
        &launcher,
        &output,
        &[
            &inside.display().to_string(),
            &format!("through the mount of {}", launcher.work.display()),
            "--force",
        ],
    );
    // Two levels up is as exposed as one.
    let deeper = launcher.work.join("a/b/allowed_domains.txt");
    user_file(&launcher.work, &deeper, "allowed.test\n");
    let options = with_allowlist(proxy_default_allowlist(), &deeper);
    let output = run(launcher.shell_as_user(&options, &["true"]));
    assert_refused(
        &launcher,
        &output,
        &["can change it from inside the sandbox"],
    );
}

#[test]
fn a_symlinked_agents_directory_is_refused_unless_forced() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let launcher = launcher.owned_by_user();
    // ~/.agents -> ~/dotfiles/agents; pi's profile mounts ~/.agents read-write (and
    // ~/dotfiles read-only): the file is writable through the first.
    let real = launcher.home.join("dotfiles/agents");
    user_file(
        &launcher.home,
        &real.join("allowed_domains.txt"),
        "allowed.test\n",
    );
    std::os::unix::fs::symlink(&real, launcher.home.join(".agents")).unwrap();
    let named = launcher.home.join(".agents/allowed_domains.txt");
    let options = with_allowlist(proxy_default_allowlist(), &named);
    let output = run(launcher.shell_as_user(&options, &["true"]));
    assert_refused(
        &launcher,
        &output,
        &[
            &named.display().to_string(),
            &format!(
                "through the mount of {}",
                launcher.home.join(".agents").display()
            ),
        ],
    );
    // The real path is refused alike.
    let options = with_allowlist(proxy_default_allowlist(), &real.join("allowed_domains.txt"));
    let output = run(launcher.shell_as_user(&options, &["true"]));
    assert_refused(
        &launcher,
        &output,
        &["can change it from inside the sandbox"],
    );
    // With --force it runs, says why that is dangerous, and the agent can indeed write
    // the file.
    let mut forced = with_allowlist(proxy_default_allowlist(), &named);
    forced.push("--force".to_owned());
    let append = "echo widened.test >> /home/piuser/.agents/allowed_domains.txt";
    let output = run(launcher.shell_as_user(&forced, &["sh", "-c", append]));
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--force: the agent can change the allowlist"),
        "{stderr}"
    );
    let written = std::fs::read_to_string(real.join("allowed_domains.txt")).unwrap();
    assert!(written.contains("widened.test"), "{written}");
    assert!(launcher_objects(&launcher.scope).is_empty());
}

#[test]
fn the_old_default_allowlist_written_by_a_run_without_the_proxy_is_not_used_silently() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let launcher = launcher.owned_by_user();
    // A run without the proxy creates the old default through the ~/.agents mount.
    let plant = "echo '*.attacker.test' > /home/piuser/.agents/proxy_allowed_domains.txt";
    let output = run(launcher.shell_as_user(&[] as &[&str], &["sh", "-c", plant]));
    assert_eq!(output.status.code(), Some(0));
    let legacy = launcher.home.join(".agents/proxy_allowed_domains.txt");
    assert!(legacy.exists(), "the agent could not write the old default");
    // The next proxy run refuses it, and says how to move a file of the user's.
    let new = launcher
        .home
        .join(".config/agent-sandbox/allowed_domains.txt");
    let output = run(launcher.shell_as_user(&proxy_default_allowlist(), &["true"]));
    assert_refused(
        &launcher,
        &output,
        &[
            &legacy.display().to_string(),
            &format!("mv {} {}", legacy.display(), new.display()),
        ],
    );
    // With the new default in place, the old one is not read at all.
    user_file(&launcher.home, &new, "allowed.test\n");
    let output = run(launcher.shell_as_user(&proxy_default_allowlist(), &["true"]));
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("proxy_allowed_domains"), "{stderr}");
    assert!(launcher_objects(&launcher.scope).is_empty());
    // And no run, with the proxy or without, may write the new default.
    let config = launcher.home.join(".config");
    let mut from_config = launcher.shell(&[] as &[&str], &["true"]);
    from_config.current_dir(&config);
    let output = run(as_user(&from_config, USER));
    assert_refused(
        &launcher,
        &output,
        &[&format!(
            "configuration directory {}",
            config.join("agent-sandbox").display()
        )],
    );
}

/// The lines a child process printed so far, on one of its streams.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    /// Collects the lines of `stream` on a thread until it ends.
    fn collect(stream: impl Read + Send + 'static) -> Self {
        let lines = Self::default();
        let collected = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                collected.0.lock().unwrap().push(line);
            }
        });
        lines
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// The lines from number `from` on.
    fn since(&self, from: usize) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .get(from..)
            .unwrap_or_default()
            .to_vec()
    }

    /// Waits until a line from number `from` on satisfies `found`; returns its number.
    fn wait_for(&self, from: usize, what: &str, found: impl Fn(&str) -> bool) -> usize {
        eventually(TAKES_EFFECT, what, || {
            let lines = self.since(from);
            match lines.iter().position(|line| found(line)) {
                Some(at) => Ok(from + at),
                None => Err(lines.join("\n")),
            }
        })
    }
}

/// A launcher running in the background with its output collected.
struct Running {
    child: Child,
    stdout: Lines,
    stderr: Lines,
}

impl Running {
    fn start(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Self {
            stdout: Lines::collect(child.stdout.take().unwrap()),
            stderr: Lines::collect(child.stderr.take().unwrap()),
            child,
        }
    }

    /// Waits until the probe in the sandbox answers `code` after `from` lines; returns
    /// how long it took and the line number.
    fn answers(&self, from: usize, code: &str, what: &str) -> (Duration, usize) {
        let started = Instant::now();
        let wanted = format!("second.test: {code}");
        let at = self.stdout.wait_for(from, what, |line| line == wanted);
        (started.elapsed(), at)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Replaces `path` by rename, as editors save.
fn rename_replace(path: &Path, text: &str) {
    let temporary = path.with_extension("txt~");
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

#[test]
fn editing_the_allowlist_during_a_run_changes_what_the_proxy_allows() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let launcher = launcher.owned_by_user();
    let scope = &launcher.scope;
    let egress = scope.network("egress", &[]);
    let _second = Upstream::start(scope, &egress, "second.test", &[80]);
    let options = launcher.proxy_options("first.test\n", Some(&egress));
    let file = scope.dir().join("allowed_domains.txt");
    // Asks for second.test through the proxy until the test leaves a `stop` file.
    let probe = r#"
        while [ ! -e stop ]; do
            echo "second.test: $(curl -s -m 5 -o /dev/null -w '%{http_code}' http://second.test/)"
            sleep 0.05
        done
    "#;
    let mut running = Running::start(launcher.shell_as_user(&options, &["bash", "-c", probe]));
    let (_, seen) = running.answers(0, "403", "second.test refused at first");
    let mut latencies = Vec::new();

    // In place: the file keeps its inode.
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"first.test\nsecond.test\n"))
        .unwrap();
    let (took, seen) = running.answers(seen + 1, "200", "an edit in place allowing second.test");
    latencies.push(took);

    // By rename: taken away, then given back.
    rename_replace(&file, "first.test\n");
    let (took, seen) = running.answers(seen + 1, "403", "a rename-replace refusing second.test");
    latencies.push(took);
    rename_replace(&file, "second.test\n");
    let (took, seen) = running.answers(seen + 1, "200", "a rename-replace allowing second.test");
    latencies.push(took);

    // Invalid: reported once with file, line and column; second.test stays allowed.
    std::fs::write(&file, "second.test\nexa mple.test\n").unwrap();
    let located = format!("{}:2:", file.display());
    let errors_from = running.stderr.count();
    running
        .stderr
        .wait_for(errors_from, "the invalid edit reported", |line| {
            line.contains(&located)
        });
    let after_error = running.stdout.count();
    eventually(
        TAKES_EFFECT,
        "more answers after the invalid edit",
        || match running.stdout.count() {
            count if count >= after_error + 3 => Ok(()),
            count => Err(count),
        },
    );
    let answers = running.stdout.since(seen);
    assert!(
        answers.iter().all(|line| line == "second.test: 200"),
        "the invalid edit changed the policy: {answers:?}"
    );
    std::fs::write(launcher.work.join("stop"), "").unwrap();
    let status = running.child.wait().unwrap();
    let stderr = running.stderr.since(0).join("\n");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(
        stderr.matches(&located).count(),
        1,
        "the invalid edit was not reported exactly once:\n{stderr}"
    );
    assert!(
        stderr.contains("the last good allowlist stays in force"),
        "{stderr}"
    );
    eprintln!("allowlist changes took effect in the sandbox after {latencies:?}");
    assert!(launcher_objects(scope).is_empty());
    assert_eq!(
        std::fs::read_dir(&launcher.runtime).unwrap().count(),
        0,
        "the proxy's copy of the allowlist was left behind"
    );
}
