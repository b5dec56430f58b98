//! A path below a directory, as the settings file and agent profiles name the parts of a
//! mounted directory that the sandbox must not change (`protect = [".vscode/"]`, a
//! profile's `code = ["extensions/"]`): relative, without `..`, a trailing `/` marking a
//! directory.

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

/// A relative path below some directory, normalised (`./a//b/` is `a/b/`), that never
/// leaves it. Whether it names a directory matters only while it does not exist: a
/// missing directory of an agent's config can be created empty so that it can be
/// protected; a missing file cannot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct SubPath {
    path: PathBuf,
    dir: bool,
}

/// Why a string is not a [`SubPath`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path {text:?}: {reason}")]
pub(crate) struct SubPathError {
    text: String,
    reason: &'static str,
}

impl SubPath {
    /// The path, relative.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it names a directory (written with a trailing `/`).
    pub(crate) fn is_dir(&self) -> bool {
        self.dir
    }
}

impl FromStr for SubPath {
    type Err = SubPathError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |reason| SubPathError {
            text: text.to_owned(),
            reason,
        };
        let mut path = PathBuf::new();
        for component in Path::new(text).components() {
            match component {
                Component::Normal(part) => path.push(part),
                Component::CurDir => {}
                Component::ParentDir => return Err(error("`..` is not allowed")),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(error("expected a relative path"));
                }
            }
        }
        if path.as_os_str().is_empty() {
            return Err(error(
                "expected a path below the directory, not the directory",
            ));
        }
        Ok(Self {
            path,
            dir: text.ends_with('/'),
        })
    }
}

impl TryFrom<String> for SubPath {
    type Error = SubPathError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl fmt::Display for SubPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}",
            self.path.display(),
            if self.dir { "/" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_normalised_and_remember_a_trailing_slash() {
        for (text, path, dir) in [
            (".vscode/", ".vscode", true),
            ("./.git//hooks/", ".git/hooks", true),
            (".envrc", ".envrc", false),
            ("a/./b", "a/b", false),
        ] {
            let parsed: SubPath = text.parse().unwrap();
            assert_eq!((parsed.path(), parsed.is_dir()), (Path::new(path), dir));
        }
        assert_eq!(
            "./.git//hooks/".parse::<SubPath>().unwrap().to_string(),
            ".git/hooks/"
        );
    }

    #[test]
    fn paths_that_leave_the_directory_are_refused() {
        for text in ["", ".", "./", "/etc/passwd", "../x", "a/../../b", "a/.."] {
            let error = text.parse::<SubPath>().unwrap_err().to_string();
            assert!(error.contains(&format!("{text:?}")), "{error}");
        }
    }
}
