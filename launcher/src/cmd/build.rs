//! `build`: (re)builds agent image variants and makes sure of the sidecar image.

use super::Error;
use crate::engine::Engine;
use crate::exit::ExitStatus;
use crate::options::Lang;
use crate::options::cli::{BuildArgs, ImageKind};
use crate::options::image_ref::ImageRef;
use crate::options::settings::Settings;
use crate::report::notice;
use crate::sandbox::checkout::Checkout;
use crate::sandbox::images::{self, DEFAULT_BASE_IMAGE, ImageSpec};
use crate::sandbox::sidecar_image::{self, Origin};

/// `build`: (re)builds the agent image variants asked for, then makes sure of the
/// sidecar image: built from the source checkout when there is one, else pulled when it
/// is missing or of another version.
pub(super) async fn build_images(
    settings: &Settings,
    args: &BuildArgs,
) -> Result<ExitStatus, Error> {
    let engine = Engine::connect().await?;
    if args.only != Some(ImageKind::Sidecar) {
        let langs = if args.all {
            Lang::ALL.to_vec()
        } else {
            vec![args.lang.or(settings.lang).unwrap_or(Lang::Base)]
        };
        let base = args
            .base_image
            .clone()
            .or_else(|| settings.base_image.clone());
        for lang in langs {
            let spec = ImageSpec::agent(lang, base.as_deref().unwrap_or(DEFAULT_BASE_IMAGE));
            images::ensure(&engine, &spec, true).await?;
            notice(&format!("built {}", spec.tag));
        }
    }
    if args.only != Some(ImageKind::Agent) {
        let image = ImageRef::sidecar(
            args.proxy_image
                .as_deref()
                .or(settings.proxy_image.as_deref()),
        );
        let checkout = Checkout::find(settings.source_checkout.as_deref())?;
        if sidecar_image::ensure(&engine, &image, checkout.as_ref(), true).await? == Origin::Present
        {
            notice(&format!("the sidecar image {} is there", image.name()));
        }
    }
    Ok(ExitStatus::SUCCESS)
}
