//! `run` and `shell`: one sandboxed command from validated options to exit status.
//!
//! The flow: options checked against the host ([`SandboxConfig`]), the engine, a
//! session (labels on everything), leftovers of dead runs removed while the images are
//! checked, the browser hand-off channel, in proxy mode the allowlist's copy for the
//! sidecar and the policy in force (followed during the run), the sandbox (sidecar or a
//! per-run network, then the agent container), the protected paths' snapshot, the
//! agent's streams relayed until it exits (signals passed on), the warning about
//! protected paths the run changed, the proxy's record of refused destinations, and
//! teardown on every path.

use std::path::Path;
use std::time::Duration;

use super::Error;
use super::signals::{Terminations, signal_name};
use crate::engine::Engine;
use crate::exit::ExitStatus;
use crate::options::profile::{Missing, Profile, ResolvedMount};
use crate::options::{Isolation, Network, Options};
use crate::report::{chain, notice};
use crate::sandbox::allowlist::follow::LiveAllowlist;
use crate::sandbox::allowlist::{self, PolicyInForce, copy};
use crate::sandbox::checkout::Checkout;
use crate::sandbox::config::{AgentImage, Host, SandboxConfig};
use crate::sandbox::images::{self, ImageState};
use crate::sandbox::labels::{Owner, Session};
use crate::sandbox::protect::snapshot::Watch;
use crate::sandbox::sidecar_image;
use crate::sandbox::{AgentNetwork, Sandbox, liveness, private_dirs, teardown};
use crate::terminal::browser::callback::Callbacks;
use crate::terminal::browser::{self, Channel, HandOff, Rules};
use crate::terminal::{self, RawMode, stdio};

/// The key sequence that detaches from the container: docker's default (Ctrl-P Ctrl-Q)
/// would swallow every Ctrl-P, which agents use (pi cycles models with it).
const DETACH_KEYS: &str = "ctrl-],ctrl-^";

/// How long the agent may take to exit after a signal is passed on to it.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// `run` and `shell`: one sandboxed command, its exit status, and teardown on every path.
pub(super) async fn sandboxed(
    args: &Options,
    profile: &Profile,
    command: Vec<String>,
) -> Result<ExitStatus, Error> {
    let host = Host::current()?;
    let config = SandboxConfig::new(args, profile, command, &host, |name| {
        std::env::var(name).ok()
    })?;
    for warning in &config.warnings {
        notice(&format!("warning: {warning}"));
    }
    if config.writable_config {
        notice(
            "warning: --writable-config: the agent can change the code in its config \
             (extensions, packages, skills), which runs in every later session",
        );
    }
    let engine = Engine::connect().await?;
    let owner = liveness::current_owner();
    let session = Session::new(owner.clone(), config.extra_labels.clone());
    teardown::remove_on_panic(session.id.clone());
    terminal::restore_on_panic();
    // Leftovers of earlier runs are removed while the images are checked.
    let gc = collect_leftovers(&engine, &owner, &session.id);
    let ((), images) = tokio::join!(gc, prepare_images(&engine, &config));
    images?;
    tracing::debug!(phase = "images ready");
    let mut terminations = Terminations::listen().map_err(Error::Signals)?;
    let browser = Channel::create_in_private_dir(&session.id, &owner).map_err(Error::Browser)?;
    let config = with_browser_channel(config, &browser);
    let mut live = match &config.proxy {
        Some(proxy) => Some(
            allowlist::follow(
                &proxy.allowlist,
                &config,
                private_dirs::parents(),
                &session.id,
                &owner,
            )
            .map_err(Error::AllowlistCopy)?,
        ),
        None => None,
    };
    let policy: Option<PolicyInForce> = live.as_ref().map(LiveAllowlist::policy);
    let copy_dir = live.as_ref().map(|live| live.copy().dir());
    let rules = policy.clone().map_or(Rules::PublicOnly, Rules::Policy);
    let mut handoff = HandOff::new(browser, rules, Callbacks::new(engine.clone()));
    let sandbox = Sandbox::new(&engine, &session);
    let agent = || sandbox.agent_id();
    let watch = Watch::default();
    let outcome = supervise(
        &sandbox,
        run_in(&sandbox, &engine, &config, copy_dir.as_deref(), &watch),
        &mut terminations,
        handoff.follow(agent),
        Followed {
            allowlist: live.as_mut(),
            policy,
        },
    )
    .await;
    handoff.handle_new(&agent).await;
    // The login callbacks' listeners close and the channel goes before the containers.
    drop(handoff);
    tracing::debug!(phase = "run done");
    let mut failures = sandbox.teardown().await;
    match teardown::session_resources(&engine, &session.id).await {
        Ok(left) => failures.extend(teardown::remove_all(&engine, left).await),
        Err(error) => failures.push(error),
    }
    for failure in &failures {
        notice(&format!("teardown: {}", chain(failure)));
    }
    // The sidecar is gone: its copy of the allowlist goes too.
    drop(live);
    // When the run ended before the agent did (a signal, an error), the agent is gone
    // only now.
    watch.end().iter().for_each(|line| notice(line));
    outcome
}

/// Removes what earlier runs whose launcher is gone left behind (engine objects and
/// browser channels); failures are logged, they do not stop this run.
async fn collect_leftovers(engine: &Engine, owner: &Owner, session: &str) {
    browser::remove_stale_everywhere(liveness::is_running);
    copy::remove_stale_everywhere(liveness::is_running);
    match teardown::gc(engine, &owner.host, Some(session), liveness::is_running).await {
        Ok(removed) if !removed.is_empty() => {
            tracing::info!(
                sessions = removed.len(),
                "removed leftovers of earlier runs"
            );
        }
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(error = %chain(&error), "cannot look for leftovers of earlier runs");
        }
    }
}

/// `config` with the browser hand-off channel's file mounted (alone) and announced to
/// the image's shim.
fn with_browser_channel(mut config: SandboxConfig, channel: &Channel) -> SandboxConfig {
    config.mounts.push(ResolvedMount {
        source: channel.file_path(),
        target: browser::CONTAINER_FILE.to_owned(),
        read_only: false,
        missing: Missing::Skip,
        code: Vec::new(),
        watch: Vec::new(),
    });
    config
        .env
        .push(format!("{}={}", browser::ENV_VAR, browser::CONTAINER_FILE));
    config
}

/// The user's allowlist during a proxy-mode run, and the policy in force it feeds.
struct Followed<'a> {
    allowlist: Option<&'a mut LiveAllowlist>,
    policy: Option<PolicyInForce>,
}

/// The next change of the user's allowlist, as the message telling the user (never,
/// without the proxy).
async fn next_change(allowlist: &mut Option<&mut LiveAllowlist>) -> String {
    match allowlist.as_deref_mut() {
        Some(live) => {
            let change = live.next_change().await;
            live.describe(&change)
        }
        None => std::future::pending().await,
    }
}

/// Returns once a new policy is in force (never, without the proxy).
async fn policy_changed(policy: &mut Option<PolicyInForce>) {
    let changed = match policy {
        Some(policy) => policy.changed().await.is_ok(),
        None => false,
    };
    if !changed {
        std::future::pending::<()>().await;
    }
}

/// Drives `run` to its end while `handoff` opens the URLs the container hands over,
/// following the allowlist (the sidecar reloads on every new policy) and handling
/// signals. The first signal is passed on to the agent, which gets [`STOP_GRACE`] to exit
/// while its output is still relayed (as `docker run` does); a second signal, the grace
/// running out, or a signal before the agent exists ends the run at once.
async fn supervise(
    sandbox: &Sandbox<'_>,
    run: impl Future<Output = Result<ExitStatus, Error>>,
    terminations: &mut Terminations,
    handoff: impl Future<Output = ()>,
    followed: Followed<'_>,
) -> Result<ExitStatus, Error> {
    let Followed {
        mut allowlist,
        mut policy,
    } = followed;
    tokio::pin!(run, handoff);
    let mut signalled: Option<i32> = None;
    let grace = tokio::time::sleep(Duration::MAX);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            result = &mut run => return result,
            () = &mut handoff => {}
            message = next_change(&mut allowlist) => notice(&message),
            () = policy_changed(&mut policy) => sandbox.reload_proxy().await,
            number = terminations.recv() => {
                let (name, engine_name) = signal_name(number);
                if signalled.is_some() || !sandbox.has_agent() {
                    notice(&format!("{name}: stopping the sandbox"));
                    return Ok(ExitStatus::from_signal(number));
                }
                notice(&format!("{name}: passed on to the agent (again to stop at once)"));
                signalled = Some(number);
                sandbox.signal_agent(engine_name).await;
                grace.as_mut().reset(tokio::time::Instant::now() + STOP_GRACE);
            }
            () = &mut grace => {
                notice("the agent did not stop in time: stopping the sandbox");
                return Ok(ExitStatus::from_signal(signalled.unwrap_or(15)));
            }
        }
    }
}

/// Builds the agent image when needed, and makes sure of the sidecar image in proxy
/// mode or when a rebuild is asked for.
async fn prepare_images(engine: &Engine, config: &SandboxConfig) -> Result<(), Error> {
    if let AgentImage::Built(spec) = &config.image
        && images::ensure(engine, spec, config.rebuild).await? == ImageState::Built
    {
        notice(&format!("built {}", spec.tag));
    }
    if config.proxy.is_some() || config.rebuild {
        let checkout = Checkout::find(config.source_checkout.as_deref())?;
        sidecar_image::ensure(
            engine,
            &config.sidecar_image,
            checkout.as_ref(),
            config.rebuild,
        )
        .await?;
    }
    Ok(())
}

/// Without the proxy, the tools volume for login callbacks when the sidecar image is
/// here; a run goes on without it (callbacks then cannot reach the sandbox).
async fn tools(sandbox: &Sandbox<'_>, config: &SandboxConfig) -> Option<String> {
    let image = config.sidecar_image.name();
    match sandbox.create_tools(&image).await {
        Ok(tools) => tools,
        Err(error) => {
            tracing::warn!(error = %chain(&error), "no tools volume: login callbacks cannot be forwarded");
            None
        }
    }
}

/// Sets the sandbox up and runs the command, with `watch` taken just before the agent
/// starts and reported just after it exits; the caller tears it down. In proxy mode the
/// sidecar mounts `allowlist_dir`, the launcher's copy of the allowlist.
async fn run_in(
    sandbox: &Sandbox<'_>,
    engine: &Engine,
    config: &SandboxConfig,
    allowlist_dir: Option<&Path>,
    watch: &Watch,
) -> Result<ExitStatus, Error> {
    let (proxy, network, tools) = match (&config.proxy, allowlist_dir) {
        (Some(proxy), Some(allowlist_dir)) => {
            for warning in &proxy.warnings {
                notice(&format!("warning: {warning}"));
            }
            if proxy.isolation == Isolation::InternalNetwork {
                notice(
                    "warning: --isolation internal-network lets the agent reach services listening on all \
                     addresses of the host through the network's gateway",
                );
            }
            let proxy = sandbox.create_proxy(proxy, allowlist_dir).await?;
            let (network, tools) = (proxy.network.clone(), Some(proxy.tools.clone()));
            (Some(proxy), network, tools)
        }
        _ if config.network == Network::Host => {
            notice(
                "warning: --network host: unrestricted egress, and the agent reaches every service on the \
                 host's 127.0.0.1 and its abstract Unix sockets",
            );
            (None, AgentNetwork::Host, tools(sandbox, config).await)
        }
        _ => {
            notice(
                "network egress is unrestricted (a network of its own, not the host's); use --proxy to \
                 restrict it to an allowlist",
            );
            let network = sandbox.create_agent_network().await?;
            (None, network, tools(sandbox, config).await)
        }
    };
    let tty = terminal::is_interactive();
    // The agent container is created while the sidecar starts; it starts once the
    // sidecar is ready.
    let create_agent = async {
        let image_command = engine.image_command(config.image.name()).await?;
        let agent =
            sandbox.create_agent_container(config, &network, tools.as_deref(), &image_command, tty);
        Ok::<_, Error>(agent.await?)
    };
    let agent = match &proxy {
        Some(proxy) => {
            let (started, agent) = tokio::join!(sandbox.start_proxy(proxy), create_agent);
            started?;
            tracing::debug!(phase = "proxy ready");
            agent?
        }
        None => create_agent.await?,
    };
    // Docker's order: attach before start (no output lost), wait after start.
    let attached = engine.attach(&agent, DETACH_KEYS).await?;
    tracing::debug!(phase = "agent created");
    watch.begin(&config.protection, &config.workdir);
    tracing::debug!(phase = "protected paths recorded");
    engine.start_container(&agent).await?;
    tracing::debug!(phase = "agent started");
    let exit = engine.wait_exit(&agent);
    if tty {
        let raw = RawMode::enable().map_err(Error::Terminal)?;
        tokio::select! {
            relayed = stdio::relay(attached) => relayed?,
            () = terminal::follow_size(engine, &agent) => {}
        }
        drop(raw);
    } else {
        stdio::relay(attached).await?;
    }
    let code = exit.await?;
    watch.end().iter().for_each(|line| notice(line));
    if let Some(proxy) = &proxy {
        match sandbox.denied(proxy).await {
            Ok(denied) => denied.summary().iter().for_each(|line| notice(line)),
            Err(error) => notice(&format!(
                "cannot read what the proxy blocked: {}",
                chain(&error)
            )),
        }
    }
    Ok(ExitStatus::from_container_code(code))
}
