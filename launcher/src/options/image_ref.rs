//! Image references as `--proxy-image` and `--image` take them, and the sidecar image
//! this launcher runs by default: the published `sandbox-proxy` image of the launcher's
//! own version, `REPOSITORY:VERSION`. The repository is set when the launcher is built
//! (`AGENT_SANDBOX_PROXY_REPOSITORY`, default `ghcr.io/agent-sandbox/sandbox-proxy`, the
//! default tag of `scripts/build-proxy-image.sh` too); release builds also pin the digest
//! it is pulled by (`AGENT_SANDBOX_PROXY_DIGEST`).

use std::fmt;

/// The launcher's version; the sidecar image must be of the same version.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The repository of the published sidecar image.
const SIDECAR_REPOSITORY: &str = match option_env!("AGENT_SANDBOX_PROXY_REPOSITORY") {
    Some(repository) if !repository.is_empty() => repository,
    _ => "ghcr.io/agent-sandbox/sandbox-proxy",
};

/// The digest of the published sidecar image of [`VERSION`], where the release pinned it.
const SIDECAR_DIGEST: Option<&str> = match option_env!("AGENT_SANDBOX_PROXY_DIGEST") {
    Some(digest) if !digest.is_empty() => Some(digest),
    _ => None,
};

/// An image reference: `repository:tag`, the name the engine knows the image by, and
/// optionally `@sha256:…`, the digest it is pulled by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRef {
    pub(crate) repository: String,
    pub(crate) tag: String,
    pub(crate) digest: Option<String>,
}

impl ImageRef {
    /// The sidecar image this launcher runs unless told otherwise.
    pub(crate) fn default_sidecar() -> Self {
        Self {
            repository: SIDECAR_REPOSITORY.to_owned(),
            tag: VERSION.to_owned(),
            digest: SIDECAR_DIGEST.map(str::to_owned),
        }
    }

    /// The sidecar image to run: `given` (`--proxy-image`, `proxy_image`), else the default.
    pub(crate) fn sidecar(given: Option<&str>) -> Self {
        given.map_or_else(Self::default_sidecar, Self::parse)
    }

    /// `reference` as docker takes it: `repository[:tag][@digest]`; the tag defaults to
    /// `latest`.
    pub(crate) fn parse(reference: &str) -> Self {
        let (name, digest) = match reference.split_once('@') {
            Some((name, digest)) => (name, Some(digest.to_owned())),
            None => (reference, None),
        };
        // A colon after the last slash starts the tag; one before it is a registry port.
        let last = name.rfind('/').map_or(0, |at| at + 1);
        let (repository, tag) = match name[last..].rfind(':') {
            Some(at) => (&name[..last + at], &name[last + at + 1..]),
            None => (name, "latest"),
        };
        Self {
            repository: repository.to_owned(),
            tag: tag.to_owned(),
            digest,
        }
    }

    /// The name the image has in the engine: `repository:tag`.
    pub(crate) fn name(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }

    /// The registry a pull fetches it from: the first component when it names a host,
    /// else Docker Hub.
    pub(crate) fn registry(&self) -> &str {
        match self.repository.split_once('/') {
            Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
            _ => "docker.io",
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)?;
        match &self.digest {
            Some(digest) => write!(f, "@{digest}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_repository_tag_and_digest() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let pinned = format!("localhost:5000/proxy:v2@{digest}");
        for (reference, repository, tag, pin) in [
            (
                "ghcr.io/o/sandbox-proxy:0.1.0",
                "ghcr.io/o/sandbox-proxy",
                "0.1.0",
                None,
            ),
            (
                "127.0.0.1:5000/x/proxy:t1",
                "127.0.0.1:5000/x/proxy",
                "t1",
                None,
            ),
            (
                "127.0.0.1:5000/x/proxy",
                "127.0.0.1:5000/x/proxy",
                "latest",
                None,
            ),
            ("proxy", "proxy", "latest", None),
            (&pinned, "localhost:5000/proxy", "v2", Some(digest.as_str())),
        ] {
            let image = ImageRef::parse(reference);
            assert_eq!(image.repository, repository, "{reference}");
            assert_eq!(image.tag, tag, "{reference}");
            assert_eq!(image.digest.as_deref(), pin, "{reference}");
            assert_eq!(image.name(), format!("{repository}:{tag}"));
            assert_eq!(image.to_string().trim_end_matches(":latest"), reference);
        }
    }

    #[test]
    fn the_registry_is_the_first_component_when_it_names_a_host() {
        for (reference, registry) in [
            ("ghcr.io/o/p:1", "ghcr.io"),
            ("127.0.0.1:5000/p:1", "127.0.0.1:5000"),
            ("localhost/p", "localhost"),
            ("agent-sandbox/proxy:1", "docker.io"),
            ("proxy", "docker.io"),
        ] {
            assert_eq!(
                ImageRef::parse(reference).registry(),
                registry,
                "{reference}"
            );
        }
    }

    #[test]
    fn the_default_sidecar_is_pinned_to_this_version() {
        let image = ImageRef::default_sidecar();
        assert_eq!(image.tag, VERSION);
        assert_eq!(ImageRef::parse(&image.to_string()), image);
    }
}
