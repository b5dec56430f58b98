//! Command-line arguments as the user typed them (raw, unvalidated), and the argument
//! pre-processing that keeps the old `pi` wrapper's usage working: invocation under an
//! agent's name, and unrecognised arguments passed to the agent.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::options::image_ref::{ImageRef, VERSION};
use crate::options::limits::{CpuLimit, Limit, MemoryLimit, PidsLimit};
use crate::options::profile::BUILTIN_AGENTS;
use crate::options::{Isolation, Lang, Network};

/// The name of the launcher's own executable; any other name that is a built-in agent's
/// (a symlink `pi -> agent-sandbox`) means `agent-sandbox run <that agent>`.
const LAUNCHER_NAME: &str = "agent-sandbox";

/// What `--version` prints after the name: the version and the sidecar image it runs.
static VERSION_TEXT: LazyLock<String> =
    LazyLock::new(|| format!("{VERSION}\nsidecar image {}", ImageRef::default_sidecar()));

/// Runs coding agents in hardened Docker containers, with network egress through an
/// allowlist proxy.
#[derive(Debug, Parser)]
#[command(name = LAUNCHER_NAME, version = VERSION_TEXT.as_str(), about, propagate_version = true, args_override_self = true)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The launcher's commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run an agent in the current directory, in a sandbox. Arguments the launcher does
    /// not know, and everything after `--`, go to the agent.
    Run(RunArgs),
    /// Run a command (default: an interactive shell) in the same sandbox the agent gets.
    Shell(ShellArgs),
    /// Build the agent image (one variant, or all) and make sure of the sidecar image
    /// (built from the source checkout when there is one, else pulled when missing).
    Build(BuildArgs),
    /// Remove containers, networks and volumes left by launcher runs that no longer exist.
    Gc,
    /// Check the Docker engine, the images, the allowlist and the mode a run would use.
    Doctor(SandboxArgs),
}

/// Arguments of `run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The agent to run (a built-in profile such as `pi`, or one from the settings file).
    pub(crate) agent: String,
    /// How to build the sandbox.
    #[command(flatten)]
    pub(crate) sandbox: SandboxArgs,
    /// Arguments for the agent.
    #[arg(last = true, allow_hyphen_values = true)]
    pub(crate) agent_args: Vec<String>,
}

/// Arguments of `shell`.
#[derive(Debug, Args)]
pub(crate) struct ShellArgs {
    /// The agent profile whose mounts and environment the sandbox gets.
    #[arg(long, default_value = "pi")]
    pub(crate) agent: String,
    /// How to build the sandbox.
    #[command(flatten)]
    pub(crate) sandbox: SandboxArgs,
    /// The command to run instead of a shell.
    #[arg(last = true, allow_hyphen_values = true)]
    pub(crate) command: Vec<String>,
}

/// Arguments of `build`.
#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// The image variant to build (default: the configured one, else `base`).
    #[arg(short, long, value_enum, conflicts_with = "all")]
    pub(crate) lang: Option<Lang>,
    /// Build every variant.
    #[arg(long)]
    pub(crate) all: bool,
    /// The image the agent image is built FROM.
    #[arg(long, value_name = "IMAGE")]
    pub(crate) base_image: Option<String>,
    /// The sidecar image to make sure of [default: the one this launcher expects].
    #[arg(long, value_name = "IMAGE")]
    pub(crate) proxy_image: Option<String>,
    /// Only this image: the agent image or the sidecar image.
    #[arg(long, value_enum, conflicts_with = "all")]
    pub(crate) only: Option<ImageKind>,
}

/// The two images a sandbox runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ImageKind {
    /// The agent image (built from the embedded Dockerfile).
    Agent,
    /// The proxy sidecar image (pulled, or built from a source checkout).
    Sidecar,
}

/// Options shared by every command that sets up a sandbox. Each is optional so that the
/// settings file can supply it; a flag given here wins over the file.
#[derive(Debug, Default, Clone, Args)]
pub(crate) struct SandboxArgs {
    /// Restrict network egress to the allowlist, through the proxy sidecar.
    #[arg(short, long, overrides_with = "no_proxy")]
    pub(crate) proxy: bool,
    /// Give the agent unrestricted network access, even when the settings file enables
    /// the proxy.
    #[arg(long, overrides_with = "proxy")]
    pub(crate) no_proxy: bool,
    /// The allowlist file [default: ~/.config/agent-sandbox/allowed_domains.txt]; refused
    /// when a read-write mount of the sandbox reaches it (unless --force).
    #[arg(long, value_name = "FILE")]
    pub(crate) allowed_domains: Option<PathBuf>,
    /// The image variant.
    #[arg(short, long, value_enum)]
    pub(crate) lang: Option<Lang>,
    /// Rebuild the agent image and make sure of the sidecar image (built from the source
    /// checkout when there is one, else pulled when missing) before running.
    #[arg(short, long)]
    pub(crate) build: bool,
    /// Run this image instead of the built agent image.
    #[arg(long, value_name = "IMAGE")]
    pub(crate) image: Option<String>,
    /// The image the agent image is built FROM.
    #[arg(long, value_name = "IMAGE")]
    pub(crate) base_image: Option<String>,
    /// The proxy sidecar image [default: the published image of this launcher's version].
    #[arg(long, value_name = "IMAGE")]
    pub(crate) proxy_image: Option<String>,
    /// Attach the proxy sidecar to this existing Docker network instead of a per-run one.
    #[arg(long, value_name = "NAME")]
    pub(crate) egress_network: Option<String>,
    /// How the agent container is cut off from the network in proxy mode.
    #[arg(long, value_enum)]
    pub(crate) isolation: Option<Isolation>,
    /// The network without --proxy: a per-run bridge [default], or the host's own
    /// (its 127.0.0.1 services and abstract sockets become reachable).
    #[arg(long, value_enum, value_name = "MODE")]
    pub(crate) network: Option<Network>,
    /// Memory limit, in docker's syntax (512m, 2g), or `none` [default: half the
    /// engine's memory].
    #[arg(long, value_name = "SIZE")]
    pub(crate) memory: Option<Limit<MemoryLimit>>,
    /// CPU limit, in docker's syntax (1.5), or `none` [default: none].
    #[arg(long, value_name = "CPUS")]
    pub(crate) cpus: Option<Limit<CpuLimit>>,
    /// Limit on the number of processes in the container, or `none` [default: 4096].
    #[arg(long, value_name = "N")]
    pub(crate) pids: Option<Limit<PidsLimit>>,
    /// Mount the container's root filesystem read-only.
    #[arg(long)]
    pub(crate) read_only: bool,
    /// Allow a broad working directory: the home directory, one of its ancestors, `/`
    /// or a system directory.
    #[arg(long)]
    pub(crate) force: bool,
    /// Let the agent change the code parts of its config for this run (extensions,
    /// packages, skills...: how an extension is installed).
    #[arg(long)]
    pub(crate) writable_config: bool,
    /// An extra label `KEY=VALUE` on everything the run creates (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub(crate) labels: Vec<String>,
}

/// Parses the launcher's command line, `argv[0]` included.
///
/// Under a built-in agent's name (`pi`), the arguments are those of
/// `agent-sandbox run <agent>`. For `run`, arguments that are not launcher options go to
/// the agent, in order, as the old wrapper did; everything after `--` goes to the agent.
///
/// # Errors
///
/// The clap error for unknown values, missing arguments, `--help` and `--version`.
pub(crate) fn parse<I, T>(argv: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let mut argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let invoked_as = argv.first().map(PathBuf::from).unwrap_or_default();
    if let Some(agent) = agent_name(&invoked_as) {
        argv.splice(1..1, [OsString::from("run"), OsString::from(agent)]);
    }
    let mut command = Cli::command();
    command.build();
    let argv = match argv.get(1).and_then(|a| a.to_str()) {
        Some("run") if argv.len() > 2 => match command.find_subcommand("run") {
            Some(run) => route_agent_args(run, argv),
            None => argv,
        },
        _ => argv,
    };
    let matches = command.try_get_matches_from(argv)?;
    Cli::from_arg_matches(&matches)
}

/// The built-in agent the executable's name stands for, if it is not the launcher's name.
fn agent_name(invoked_as: &Path) -> Option<&'static str> {
    let name = invoked_as.file_name()?.to_str()?;
    BUILTIN_AGENTS.iter().copied().find(|agent| *agent == name)
}

/// Rewrites `[exe, run, AGENT, mixed...]` as `[exe, run, AGENT, options..., --, rest...]`:
/// the options the `run` command knows keep their place (with their values), everything
/// else, and everything after the first `--`, moves behind a `--` for the agent.
fn route_agent_args(run: &clap::Command, argv: Vec<OsString>) -> Vec<OsString> {
    let mut args = argv.into_iter();
    let mut launcher: Vec<OsString> = args.by_ref().take(3).collect();
    let mut agent = Vec::new();
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            agent.push(arg);
            continue;
        };
        if text == "--" {
            agent.extend(args.by_ref());
            break;
        }
        match known_option(run, text) {
            Some(takes_value) => {
                launcher.push(arg);
                if takes_value && let Some(value) = args.next() {
                    launcher.push(value);
                }
            }
            None => agent.push(arg),
        }
    }
    launcher.push(OsString::from("--"));
    launcher.extend(agent);
    launcher
}

/// Whether `text` names one of `command`'s options: `Some(true)` when its value follows
/// as the next argument, `Some(false)` for a flag or an inline `--name=value`.
fn known_option(command: &clap::Command, text: &str) -> Option<bool> {
    let takes_value = |arg: &clap::Arg| arg.get_num_args().is_some_and(|n| n.takes_values());
    if let Some(long) = text.strip_prefix("--") {
        let (name, inline) = match long.split_once('=') {
            Some((name, _)) => (name, true),
            None => (long, false),
        };
        let arg = command.get_arguments().find(|arg| {
            arg.get_long_and_visible_aliases()
                .is_some_and(|names| names.contains(&name))
        })?;
        return Some(takes_value(arg) && !inline);
    }
    let mut short = text.strip_prefix('-')?.chars();
    let (Some(letter), None) = (short.next(), short.next()) else {
        return None;
    };
    let arg = command.get_arguments().find(|arg| {
        arg.get_short_and_visible_aliases()
            .is_some_and(|letters| letters.contains(&letter))
    })?;
    Some(takes_value(arg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(argv: &[&str]) -> RunArgs {
        match parse(argv).map(|cli| cli.command) {
            Ok(Command::Run(run)) => run,
            other => panic!("{argv:?} did not parse as run: {other:?}"),
        }
    }

    #[test]
    fn pi_name_invocation_and_passthrough() {
        // (argv, proxy, lang, build, allowed_domains, agent args)
        type Case = (
            &'static [&'static str],
            bool,
            Option<Lang>,
            bool,
            Option<&'static str>,
            &'static [&'static str],
        );
        let cases: &[Case] = &[
            (&["pi"], false, None, false, None, &[]),
            (
                &["/usr/local/bin/pi", "--proxy"],
                true,
                None,
                false,
                None,
                &[],
            ),
            (&["pi", "-p"], true, None, false, None, &[]),
            (
                &["pi", "--lang", "go"],
                false,
                Some(Lang::Go),
                false,
                None,
                &[],
            ),
            (
                &["pi", "-l", "php8.5"],
                false,
                Some(Lang::Php85),
                false,
                None,
                &[],
            ),
            (
                &["pi", "--lang=php8.4"],
                false,
                Some(Lang::Php84),
                false,
                None,
                &[],
            ),
            (&["pi", "--build"], false, None, true, None, &[]),
            (
                &["pi", "-b", "--allowed-domains", "/tmp/a.txt"],
                false,
                None,
                true,
                Some("/tmp/a.txt"),
                &[],
            ),
            (
                &["pi", "--", "--help"],
                false,
                None,
                false,
                None,
                &["--help"],
            ),
            (
                &["pi", "--", "--proxy"],
                false,
                None,
                false,
                None,
                &["--proxy"],
            ),
            (
                &["pi", "--model", "x", "--proxy"],
                true,
                None,
                false,
                None,
                &["--model", "x"],
            ),
            (
                &["pi", "-c", "--proxy", "hello", "--", "-p", "--lang"],
                true,
                None,
                false,
                None,
                &["-c", "hello", "-p", "--lang"],
            ),
            (
                &["agent-sandbox", "run", "pi", "-p", "--continue"],
                true,
                None,
                false,
                None,
                &["--continue"],
            ),
            (
                &["agent-sandbox", "run", "pi", "--", "-p", "x"],
                false,
                None,
                false,
                None,
                &["-p", "x"],
            ),
        ];
        for (argv, proxy, lang, build, allowed, passed) in cases {
            let run = run_args(argv);
            assert_eq!(run.agent, "pi", "{argv:?}");
            assert_eq!(run.sandbox.proxy, *proxy, "{argv:?}");
            assert_eq!(run.sandbox.lang, *lang, "{argv:?}");
            assert_eq!(run.sandbox.build, *build, "{argv:?}");
            assert_eq!(
                run.sandbox.allowed_domains.as_deref(),
                allowed.map(Path::new),
                "{argv:?}"
            );
            assert_eq!(run.agent_args, *passed, "{argv:?}");
        }
    }

    #[test]
    fn unknown_lang_is_rejected_at_parse_time() {
        for argv in [
            &["pi", "--lang", "rust"][..],
            &["pi", "-l", "php7"],
            &["agent-sandbox", "shell", "--lang", "cobol"],
            &["agent-sandbox", "build", "--lang", "java"],
        ] {
            let error = parse(argv).err().map(|e| e.kind());
            assert_eq!(
                error,
                Some(clap::error::ErrorKind::InvalidValue),
                "{argv:?}"
            );
        }
    }

    #[test]
    fn bad_limits_are_rejected_at_parse_time() {
        for argv in [
            &["agent-sandbox", "shell", "--memory", "lots"][..],
            &["agent-sandbox", "shell", "--cpus", "0"],
            &["pi", "--pids", "-3"],
        ] {
            assert!(parse(argv).is_err(), "{argv:?} was accepted");
        }
    }

    #[test]
    fn shell_takes_a_command_after_double_dash_and_rejects_unknown_options() {
        let Ok(Command::Shell(shell)) = parse([
            "agent-sandbox",
            "shell",
            "-p",
            "--memory",
            "512m",
            "--",
            "sh",
            "-c",
            "exit 3",
        ])
        .map(|c| c.command) else {
            panic!("shell did not parse");
        };
        assert!(shell.sandbox.proxy);
        assert_eq!(
            shell
                .sandbox
                .memory
                .and_then(Limit::value)
                .map(MemoryLimit::bytes),
            Some(512 << 20)
        );
        assert_eq!(shell.command, ["sh", "-c", "exit 3"]);
        assert_eq!(shell.agent, "pi");
        assert!(parse(["agent-sandbox", "shell", "--frobnicate"]).is_err());
    }

    #[test]
    fn other_names_do_not_imply_run() {
        assert!(matches!(
            parse(["agent-sandbox", "gc"]).map(|c| c.command),
            Ok(Command::Gc)
        ));
        assert!(matches!(
            parse(["/opt/bin/agent-sandbox", "doctor"]).map(|c| c.command),
            Ok(Command::Doctor(_))
        ));
        assert!(parse(["agent-sandbox", "--proxy"]).is_err());
        assert!(matches!(
            parse(["agent-sandbox", "build", "--all"]).map(|c| c.command),
            Ok(Command::Build(BuildArgs {
                all: true,
                lang: None,
                ..
            }))
        ));
        assert!(parse(["agent-sandbox", "build", "--all", "--lang", "go"]).is_err());
    }

    #[test]
    fn repeated_flags_are_accepted_like_the_old_wrapper_did() {
        let run = run_args(&["pi", "-p", "--proxy", "--lang", "go", "--lang", "php8.4"]);
        assert!(run.sandbox.proxy);
        assert_eq!(run.sandbox.lang, Some(Lang::Php84));
        assert!(run.agent_args.is_empty());
    }

    #[test]
    fn no_proxy_overrides_proxy() {
        let run = run_args(&["pi", "--proxy", "--no-proxy"]);
        assert!(!run.sandbox.proxy && run.sandbox.no_proxy);
    }

    #[test]
    fn labels_repeat() {
        let run = run_args(&["pi", "--label", "a=1", "--label=b=2"]);
        assert_eq!(run.sandbox.labels, ["a=1", "b=2"]);
    }
}
