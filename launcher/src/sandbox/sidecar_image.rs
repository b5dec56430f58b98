//! Making sure the sidecar image is in the engine, of this launcher's version (its
//! [`VERSION_LABEL`]: the launcher and the sidecar agree on flags and paths that only
//! the same version knows). When it is missing (or of another version) it is pulled
//! through the engine, by digest when the reference pins one; when the pull fails it is
//! built from a source checkout ([`Checkout`]) when there is one; otherwise the error
//! says what failed and both ways out.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use indicatif::HumanBytes;

use super::checkout::Checkout;
use crate::engine::{Engine, EngineError, LayerProgress};
use crate::options::image_ref::{ImageRef, VERSION};
use crate::report::{chain, notice};
use crate::terminal::progress::Progress;

/// The image label holding the version of the `sandbox-proxy` inside.
pub(crate) const VERSION_LABEL: &str = "org.opencontainers.image.version";

/// Where the sidecar image of a run came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// It was there, of this version.
    Present,
    /// It has been pulled.
    Pulled,
    /// It has been built from a source checkout.
    Built,
}

/// Why the sidecar image is not available.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SidecarImageError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Neither pulling nor building worked: what failed, and the two ways out.
    #[error("{0}")]
    Unavailable(Unavailable),
    /// The image it got is not this launcher's sidecar.
    #[error(
        "the sidecar image {image} is labelled {VERSION_LABEL}={}; this launcher (version {VERSION}) needs \
         version {VERSION}: name an image of that version with --proxy-image, or build one with \
         scripts/build-proxy-image.sh --tag {image} in a checkout of version {VERSION}",
        found.as_deref().unwrap_or("(none)")
    )]
    WrongVersion {
        image: String,
        found: Option<String>,
    },
}

/// What failed when the sidecar image could be neither pulled nor built.
#[derive(Debug)]
pub(crate) struct Unavailable {
    image: ImageRef,
    /// The pull's failure, if it was tried.
    pull: Option<String>,
    /// The build's failure, or `None` when there was no checkout to build from.
    build: Option<(PathBuf, String)>,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let image = &self.image;
        write!(f, "cannot get the sidecar image {image}: ")?;
        if let Some(pull) = &self.pull {
            write!(f, "pulling it failed ({pull}); ")?;
        }
        match &self.build {
            Some((checkout, build)) => write!(
                f,
                "building it from the checkout {} failed ({build})",
                checkout.display()
            )?,
            None => write!(f, "there is no source checkout to build it from")?,
        }
        write!(
            f,
            ". Either let the engine pull it (check the network and that {} answers, \
             then run again, or `docker pull {image}`), or build it from a source checkout \
             of agent-sandbox {VERSION} (`scripts/build-proxy-image.sh --tag {}` there, or \
             `source_checkout = \"PATH\"` in the settings file to let the launcher build it)",
            image.registry(),
            image.name()
        )
    }
}

/// Makes sure `image` is in the engine, of this launcher's version: present, else
/// pulled, else built from `checkout`. With `rebuild` and a checkout, it is built from
/// the checkout whether it is there or not.
///
/// # Errors
///
/// Neither worked ([`SidecarImageError::Unavailable`]), the image got is of another
/// version, or the engine fails.
pub(crate) async fn ensure(
    engine: &Engine,
    image: &ImageRef,
    checkout: Option<&Checkout>,
    rebuild: bool,
) -> Result<Origin, SidecarImageError> {
    let name = image.name();
    if let (true, Some(checkout)) = (rebuild, checkout) {
        return build(engine, image, checkout, None).await;
    }
    match engine.image_labels(&name).await? {
        Some(labels) if version(&labels) == Some(VERSION) => return Ok(Origin::Present),
        Some(labels) => notice(&format!(
            "the sidecar image {name} is version {}, not {VERSION}: replacing it",
            version(&labels).unwrap_or("(none)")
        )),
        None => {}
    }
    match pull(engine, image).await {
        Ok(()) => {
            check_version(engine, &name).await?;
            notice(&format!("pulled the sidecar image {image}"));
            Ok(Origin::Pulled)
        }
        Err(error) => match checkout {
            Some(checkout) => build(engine, image, checkout, Some(chain(&error))).await,
            None => Err(SidecarImageError::Unavailable(Unavailable {
                image: image.clone(),
                pull: Some(chain(&error)),
                build: None,
            })),
        },
    }
}

/// Where the sidecar image of the next run comes from, as a line for `doctor`.
///
/// # Errors
///
/// The engine fails.
pub(crate) async fn describe(
    engine: &Engine,
    image: &ImageRef,
    checkout: Option<&Checkout>,
) -> Result<String, EngineError> {
    let name = image.name();
    let state = match engine.image_labels(&name).await? {
        Some(labels) => match version(&labels) {
            Some(VERSION) => return Ok(format!("present, version {VERSION}")),
            found => format!("version {}, not {VERSION}", found.unwrap_or("(none)")),
        },
        None => "missing".to_owned(),
    };
    let by = if image.digest.is_some() {
        " by digest"
    } else {
        ""
    };
    Ok(match checkout {
        Some(checkout) => format!(
            "{state}: pulled from {}{by} on the next run, built from the checkout {} if that fails",
            image.registry(),
            checkout.root().display()
        ),
        None => format!(
            "{state}: pulled from {}{by} on the next run (no source checkout to build it from if that fails)",
            image.registry()
        ),
    })
}

/// The version an image's labels declare.
fn version(labels: &HashMap<String, String>) -> Option<&str> {
    labels.get(VERSION_LABEL).map(String::as_str)
}

/// Builds `image` from `checkout`; `pull` is why it was not pulled, if it was tried.
async fn build(
    engine: &Engine,
    image: &ImageRef,
    checkout: &Checkout,
    pull: Option<String>,
) -> Result<Origin, SidecarImageError> {
    let name = image.name();
    if let Some(pull) = &pull {
        notice(&format!(
            "pulling the sidecar image {image} failed ({pull})"
        ));
    }
    match checkout.build_sidecar(engine, &name).await {
        Ok(()) => {
            check_version(engine, &name).await?;
            notice(&format!(
                "built the sidecar image {name} from {}",
                checkout.root().display()
            ));
            Ok(Origin::Built)
        }
        Err(error) => Err(SidecarImageError::Unavailable(Unavailable {
            image: image.clone(),
            pull,
            build: Some((checkout.root().to_owned(), chain(&error))),
        })),
    }
}

/// Pulls `image` (by its digest when it pins one, then names it `repository:tag`),
/// with the bytes downloaded on a terminal.
async fn pull(engine: &Engine, image: &ImageRef) -> Result<(), EngineError> {
    let progress = Progress::spinner(format!("pulling {image}"));
    let mut layers: HashMap<String, (u64, u64)> = HashMap::new();
    let reference = image.digest.as_deref().unwrap_or(&image.tag);
    engine
        .pull_image(&image.repository, reference, |layer: LayerProgress| {
            // (downloaded, size) per layer; extraction reports other (uncompressed) sizes.
            let entry = layers.entry(layer.layer).or_default();
            match layer.status.as_str() {
                "Downloading" => {
                    entry.1 = layer.total.unwrap_or(entry.1);
                    entry.0 = layer.current.unwrap_or(entry.0);
                }
                "Download complete" | "Extracting" | "Pull complete" => entry.0 = entry.1,
                _ => {}
            }
            let (done, total) = layers
                .values()
                .fold((0, 0), |(done, total), (d, t)| (done + d, total + t));
            if total > 0 {
                progress.set_message(format!(
                    "pulling {image}: {}/{}",
                    HumanBytes(done),
                    HumanBytes(total)
                ));
            }
        })
        .await?;
    if let Some(digest) = &image.digest {
        let pinned = format!("{}@{digest}", image.repository);
        engine
            .tag_image(&pinned, &image.repository, &image.tag)
            .await?;
    }
    Ok(())
}

/// Checks that the image `name` carries this launcher's version.
async fn check_version(engine: &Engine, name: &str) -> Result<(), SidecarImageError> {
    let labels = engine.image_labels(name).await?.unwrap_or_default();
    match version(&labels) {
        Some(VERSION) => Ok(()),
        found => Err(SidecarImageError::WrongVersion {
            image: name.to_owned(),
            found: found.map(str::to_owned),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unavailable_message_names_the_image_and_both_ways_out() {
        let image = ImageRef::parse("127.0.0.1:5000/x/proxy:t1");
        let message = Unavailable {
            image: image.clone(),
            pull: Some("connection refused".to_owned()),
            build: None,
        }
        .to_string();
        for needle in [
            "cannot get the sidecar image 127.0.0.1:5000/x/proxy:t1",
            "connection refused",
            "no source checkout",
            "docker pull 127.0.0.1:5000/x/proxy:t1",
            "scripts/build-proxy-image.sh --tag 127.0.0.1:5000/x/proxy:t1",
            "source_checkout",
        ] {
            assert!(message.contains(needle), "{needle:?} not in {message}");
        }
    }
}
