//! The images the launcher runs, built from Dockerfiles embedded in the binary and sent to
//! the engine as a tar build context. Each image carries a label with the hash of all its
//! build inputs, so it is rebuilt only when those change (or on `--build`), and an unknown
//! variant is refused before anything is built.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::engine::{Engine, EngineError};
use crate::options::Lang;
use crate::sandbox::labels::{INPUTS_HASH, MANAGED_BY, MANAGED_BY_VALUE};
use crate::terminal::progress::Progress;

/// The agent image's Dockerfile.
const AGENT_DOCKERFILE: &str = include_str!("../../../images/agent/Dockerfile");
/// The agent image's entrypoint, baked into the image.
const AGENT_ENTRYPOINT: &str = include_str!("../../../images/agent/entrypoint.sh");
/// The browser hand-off shim (xdg-open and friends).
const AGENT_BROWSER_SHIM: &str = include_str!("../../../images/agent/browser-open.sh");
/// The repository of the built agent images; the variant is the tag.
const AGENT_REPOSITORY: &str = "agent-sandbox/agent";
/// The agent image's default base: the Node.js devcontainer image (Node 24, Debian trixie).
pub(crate) const DEFAULT_BASE_IMAGE: &str =
    "mcr.microsoft.com/devcontainers/javascript-node:24-trixie";

/// Everything an image is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// The tag the image gets.
    pub tag: String,
    /// The Dockerfile target stage.
    pub target: String,
    /// Build arguments.
    pub build_args: HashMap<String, String>,
    /// The files of the build context (`Dockerfile` among them), name and content.
    pub files: Vec<(&'static str, &'static str)>,
}

impl ImageSpec {
    /// The agent image variant `lang`, built FROM `base_image`.
    pub(crate) fn agent(lang: Lang, base_image: &str) -> Self {
        Self {
            tag: format!("{AGENT_REPOSITORY}:{}", lang.name()),
            target: lang.name().to_owned(),
            build_args: HashMap::from([("BASE_IMAGE".to_owned(), base_image.to_owned())]),
            files: vec![
                ("Dockerfile", AGENT_DOCKERFILE),
                ("entrypoint.sh", AGENT_ENTRYPOINT),
                ("browser-open.sh", AGENT_BROWSER_SHIM),
            ],
        }
    }

    /// The hash of every build input: files, target and build arguments, in a fixed order.
    pub fn inputs_hash(&self) -> String {
        let mut hasher = Sha256::new();
        let mut feed = |part: &str| {
            hasher.update(part.len().to_le_bytes());
            hasher.update(part.as_bytes());
        };
        for (name, content) in &self.files {
            feed(name);
            feed(content);
        }
        feed(&self.target);
        let mut args: Vec<_> = self.build_args.iter().collect();
        args.sort();
        for (key, value) in args {
            feed(key);
            feed(value);
        }
        format!("{:x}", hasher.finalize())
    }

    /// The build context: a tar archive of the files.
    ///
    /// # Errors
    ///
    /// Writing the archive in memory fails (it does not in practice).
    pub(crate) fn context(&self) -> std::io::Result<Vec<u8>> {
        let mut archive = tar::Builder::new(Vec::new());
        for (name, content) in &self.files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(if name.ends_with(".sh") { 0o755 } else { 0o644 });
            header.set_mtime(0);
            header.set_cksum();
            archive.append_data(&mut header, name, content.as_bytes())?;
        }
        archive.into_inner()
    }
}

/// Why an image could not be made available.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The engine failed, or the build did ([`EngineError::BuildFailed`]).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The build context (a tar archive of the image's files, written in memory) could
    /// not be written: the image's tag and the cause.
    #[error("cannot write the build context of {0}")]
    Context(String, #[source] std::io::Error),
}

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageState {
    /// The image was present with the same inputs hash.
    UpToDate,
    /// The image was missing, stale or a rebuild was asked for, and has been built.
    Built,
}

/// Whether the image `tag` with these `labels` is current for `spec`.
pub(crate) fn is_current(spec: &ImageSpec, labels: Option<&HashMap<String, String>>) -> bool {
    labels
        .and_then(|labels| labels.get(INPUTS_HASH))
        .is_some_and(|hash| *hash == spec.inputs_hash())
}

/// Makes `spec`'s image available: builds it when missing, when its inputs changed, or
/// when `force`. Progress goes to a spinner on a terminal, and to the debug log.
///
/// # Errors
///
/// The engine fails, or the build fails.
pub async fn ensure(
    engine: &Engine,
    spec: &ImageSpec,
    force: bool,
) -> Result<ImageState, ImageError> {
    if !force && is_current(spec, engine.image_labels(&spec.tag).await?.as_ref()) {
        return Ok(ImageState::UpToDate);
    }
    let context = spec
        .context()
        .map_err(|source| ImageError::Context(spec.tag.clone(), source))?;
    let labels = HashMap::from([
        (MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
        (INPUTS_HASH.to_owned(), spec.inputs_hash()),
    ]);
    let progress = Progress::spinner(format!("building {}", spec.tag));
    engine
        .build_image(
            &spec.tag,
            context,
            &spec.target,
            &spec.build_args,
            &labels,
            |line| {
                progress.set_message(format!("building {}: {line}", spec.tag));
                tracing::debug!(image = %spec.tag, line, "build");
            },
        )
        .await?;
    Ok(ImageState::Built)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_changes_with_every_input_and_only_then() {
        let base = ImageSpec::agent(Lang::Base, DEFAULT_BASE_IMAGE);
        assert_eq!(
            base.inputs_hash(),
            ImageSpec::agent(Lang::Base, DEFAULT_BASE_IMAGE).inputs_hash()
        );
        assert_ne!(
            base.inputs_hash(),
            ImageSpec::agent(Lang::Go, DEFAULT_BASE_IMAGE).inputs_hash()
        );
        assert_ne!(
            base.inputs_hash(),
            ImageSpec::agent(Lang::Base, "debian:trixie").inputs_hash()
        );
        let mut edited = base.clone();
        edited.files[1].1 = "#!/bin/sh\n";
        assert_ne!(base.inputs_hash(), edited.inputs_hash());
    }

    #[test]
    fn current_means_the_label_matches() {
        let spec = ImageSpec::agent(Lang::Php85, DEFAULT_BASE_IMAGE);
        let labels = |hash: &str| HashMap::from([(INPUTS_HASH.to_owned(), hash.to_owned())]);
        assert!(is_current(&spec, Some(&labels(&spec.inputs_hash()))));
        assert!(!is_current(&spec, Some(&labels("0000"))));
        assert!(!is_current(&spec, Some(&HashMap::new())));
        assert!(!is_current(&spec, None));
    }

    #[test]
    fn the_context_holds_every_file() {
        let spec = ImageSpec::agent(Lang::Go, DEFAULT_BASE_IMAGE);
        let bytes = spec.context().unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                entry
                    .unwrap()
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["Dockerfile", "entrypoint.sh", "browser-open.sh"]);
        assert_eq!(spec.tag, "agent-sandbox/agent:go");
    }

    #[test]
    fn the_dockerfile_has_a_stage_per_variant() {
        for lang in Lang::ALL {
            assert!(
                AGENT_DOCKERFILE.contains(&format!(" AS {}\n", lang.name())),
                "no stage {}",
                lang.name()
            );
        }
    }

    #[test]
    fn what_npm_installs_comes_last_on_path() {
        let path = AGENT_DOCKERFILE
            .lines()
            .find_map(|line| line.trim().strip_prefix("PATH="))
            .unwrap();
        let dirs: Vec<&str> = path.split(':').collect();
        assert!(dirs.last().unwrap().contains("npm-global"), "{path}");
        assert_eq!(
            dirs.iter().filter(|d| d.contains("/.pi/")).count(),
            1,
            "{path}"
        );
    }
}
