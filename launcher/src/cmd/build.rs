//! `build`: (re)builds agent image variants.

use super::Error;
use crate::engine::Engine;
use crate::exit::ExitStatus;
use crate::options::Lang;
use crate::options::cli::BuildArgs;
use crate::options::settings::Settings;
use crate::report::notice;
use crate::sandbox::images::{self, DEFAULT_BASE_IMAGE, ImageSpec};

/// `build`: (re)builds the agent image variants asked for.
pub(super) async fn build_images(
    settings: &Settings,
    args: &BuildArgs,
) -> Result<ExitStatus, Error> {
    let engine = Engine::connect().await?;
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
    Ok(ExitStatus::SUCCESS)
}
