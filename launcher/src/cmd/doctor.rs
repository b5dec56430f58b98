//! `agent-sandbox doctor`: what a run would use and whether it would work: the engine
//! (address, version, negotiated API), both images (present and current, or where they
//! would come from), the allowlist, the network mode, what is protected from the agent,
//! and the agent's limits.

use std::io::Write as _;

use crate::engine::Engine;
use crate::exit::ExitStatus;
use crate::options::profile::Profile;
use crate::options::{Isolation, Network, Options};
use crate::report::chain;
use crate::sandbox::checkout::Checkout;
use crate::sandbox::config::{
    AgentImage, DEFAULT_MEMORY_SHARE, Host, Limits, Memory, SandboxConfig,
};
use crate::sandbox::images;
use crate::sandbox::sidecar_image;

/// Checks everything and prints a report on stdout; the status is 0 when a run would
/// start, 125 otherwise.
pub(crate) async fn run(args: &Options) -> ExitStatus {
    let mut lines = Vec::new();
    let ok = check(args, &mut lines).await;
    let mut stdout = std::io::stdout().lock();
    for (good, line) in &lines {
        let _ = writeln!(stdout, "{} {line}", if *good { "ok  " } else { "FAIL" });
    }
    if ok {
        ExitStatus::SUCCESS
    } else {
        ExitStatus::LAUNCHER_FAILED
    }
}

async fn check(args: &Options, lines: &mut Vec<(bool, String)>) -> bool {
    let config = Host::current().map_err(|e| chain(&e)).and_then(|host| {
        let profile = Profile::lookup("pi", &Default::default()).map_err(|e| chain(&e))?;
        SandboxConfig::new(
            &Options {
                force: true,
                ..args.clone()
            },
            &profile,
            Vec::new(),
            &host,
            |_| None,
        )
        .map_err(|e| chain(&e))
    });
    let config = match config {
        Ok(config) => config,
        Err(error) => {
            lines.push((false, error));
            return false;
        }
    };
    lines.push((
        true,
        match &config.proxy {
            None if config.network == Network::Host => {
                "mode: the host's network (--network host), unrestricted egress, the host's \
                 127.0.0.1 services reachable"
                    .to_owned()
            }
            None => "mode: a per-run network, unrestricted egress (no --proxy)".to_owned(),
            Some(proxy) => format!(
                "mode: proxy ({}), allowlist {}, egress network {}",
                match proxy.isolation {
                    Isolation::NoNetwork => "agent without network, relay to a unix socket",
                    Isolation::InternalNetwork =>
                        "agent on an internal network (host gateway reachable)",
                },
                proxy.allowlist.path.display(),
                proxy.egress_network.as_deref().unwrap_or("per-run bridge"),
            ),
        },
    ));
    let protection = &config.protection;
    lines.push((
        true,
        format!(
            "protected from the agent: {} paths read-only, {} checked at exit{}",
            protection.read_only.len(),
            protection.watched.len(),
            if config.writable_config {
                " (--writable-config: the agent's code is writable)"
            } else {
                ""
            }
        ),
    ));
    let engine = match Engine::connect().await {
        Ok(engine) => engine,
        Err(error) => {
            lines.push((false, chain(&error)));
            return false;
        }
    };
    match engine.version().await {
        Ok(v) => lines.push((
            true,
            format!(
                "docker engine {} ({}), API {} (negotiated {}), at {}",
                v.version,
                v.platform,
                v.api_version,
                v.negotiated,
                engine.endpoint()
            ),
        )),
        Err(error) => {
            lines.push((false, chain(&error)));
            return false;
        }
    }
    match engine.total_memory().await {
        Ok(total) => lines.push((true, limits(&config.limits, total))),
        Err(error) => lines.push((false, chain(&error))),
    }
    let agent = agent_image_line(&engine, &config.image).await;
    let checkout = Checkout::find(config.source_checkout.as_deref()).map_err(|e| chain(&e));
    let sidecar = match checkout {
        Ok(checkout) => sidecar_image::describe(&engine, &config.sidecar_image, checkout.as_ref())
            .await
            .map_err(|e| chain(&e)),
        Err(error) => Err(error),
    };
    let used = if config.proxy.is_some() {
        ""
    } else {
        " (used with --proxy)"
    };
    let sidecar = sidecar.map(|line| {
        format!(
            "sidecar image {}{used}: {line}",
            config.sidecar_image.name()
        )
    });
    let mut ok = true;
    for line in [agent, sidecar] {
        ok &= line.is_ok();
        lines.push((line.is_ok(), line.unwrap_or_else(|error| error)));
    }
    ok
}

/// The agent image's line: present and current, or where it would come from.
async fn agent_image_line(engine: &Engine, image: &AgentImage) -> Result<String, String> {
    let name = image.name();
    let labels = engine.image_labels(name).await.map_err(|e| chain(&e))?;
    match (image, labels) {
        (AgentImage::Built(spec), Some(labels)) if images::is_current(spec, Some(&labels)) => {
            Ok(format!("agent image {name}: present, up to date"))
        }
        (AgentImage::Built(spec), labels) => Ok(format!(
            "agent image {name}: {}: built on the next run from the embedded Dockerfile, FROM {}",
            if labels.is_some() {
                "out of date"
            } else {
                "missing"
            },
            spec.build_args
                .get("BASE_IMAGE")
                .map_or("?", String::as_str)
        )),
        (AgentImage::Given(_), Some(_)) => Ok(format!("agent image {name}: present")),
        (AgentImage::Given(_), None) => Err(format!(
            "agent image {name}: not found (given with --image; it is never built or pulled)"
        )),
    }
}

/// The agent's limits, saying where the memory limit comes from.
fn limits(limits: &Limits, engine_total: Option<u64>) -> String {
    let gib = |bytes: u64| format!("{:.1} GiB", bytes as f64 / f64::from(1 << 30));
    let memory = match (limits.memory, engine_total) {
        (Memory::EngineShare, Some(total)) => {
            let (numerator, denominator) = DEFAULT_MEMORY_SHARE;
            format!(
                "memory {} ({numerator}/{denominator} of the engine's {}; --memory SIZE or none to change)",
                gib(limits.memory.bytes(total).unwrap_or(total)),
                gib(total)
            )
        }
        (Memory::EngineShare, None) => {
            "memory: the engine does not say how much it has (--memory SIZE to set)".to_owned()
        }
        (Memory::Unlimited, _) => "memory unlimited".to_owned(),
        (Memory::Given(limit), _) => format!("memory {}", gib(limit.bytes())),
    };
    let pids = limits.pids.map_or_else(
        || "processes unlimited".to_owned(),
        |n| format!("{n} processes"),
    );
    let cpus = limits
        .cpus
        .map_or_else(|| "CPUs unlimited".to_owned(), |c| c.to_string());
    format!("agent limits: {memory}, {pids}, {cpus}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_memory_limit_is_explained() {
        let line = limits(&Limits::default(), Some(8 << 30));
        assert!(
            line.contains("memory 4.0 GiB (1/2 of the engine's 8.0 GiB"),
            "{line}"
        );
        let given = Limits {
            memory: Memory::Unlimited,
            pids: Some(100),
            cpus: "1.5".parse().ok(),
        };
        assert_eq!(
            limits(&given, None),
            "agent limits: memory unlimited, 100 processes, 1.500000000 CPUs"
        );
    }
}
