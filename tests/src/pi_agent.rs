//! pi itself for the tests: its installed `node_modules` (shared test data beside the
//! clone, `../shared/testdata/`, never copied into the repository), a copy unpacked in
//! the test cache for running pi on the host, and a model provider as its
//! `~/.pi/agent/models.json` declares one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::cache::{CacheLock, cache_dir, workspace_root};
use crate::cli::Outcome;
use crate::engine::skip;

/// The tarball of pi's installed `node_modules`, in `../shared/testdata/`.
const MODULES_TARBALL: &str = "pi-coding-agent-1.5.2.node_modules.tar.xz";

/// pi's command-line entry point, relative to the directory holding `node_modules`.
const PI_CLI: &str = "node_modules/@earendil-works/pi-coding-agent/dist/bundle/cli.js";

/// The tarball of pi's installed `node_modules`; panics with where it should be when
/// it is missing (tests check [`pi_testdata_available`] first).
pub fn pi_modules_tarball() -> PathBuf {
    let path = tarball_path();
    if !path.is_file() {
        panic!("{} is missing", path.display());
    }
    path
}

/// Whether pi's test data is there (`../shared/testdata/` beside the clone). When it is
/// not: panics under CI, otherwise prints a SKIP banner naming the calling test and
/// returns `false`, as for a missing Docker engine.
pub fn pi_testdata_available() -> bool {
    let path = tarball_path();
    path.is_file()
        || skip(&format!(
            "pi's test data {} is missing (the shared test data belongs beside the clone)",
            path.display()
        ))
}

/// Where pi's tarball should be.
fn tarball_path() -> PathBuf {
    workspace_root()
        .join("../shared/testdata")
        .join(MODULES_TARBALL)
}

/// pi's entry point in a copy of its `node_modules` unpacked in the test cache (once),
/// for running pi directly on the host with [`node_binary`](crate::node::node_binary).
pub fn host_pi_cli() -> &'static Path {
    static CLI: OnceLock<PathBuf> = OnceLock::new();
    CLI.get_or_init(|| {
        let dir = cache_dir().join("pi-host");
        let cli = dir.join(PI_CLI);
        let _lock = CacheLock::acquire("pi-host");
        if !cli.exists() {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
            let outcome = Outcome::of(
                Command::new("tar")
                    .arg("-xJf")
                    .arg(pi_modules_tarball())
                    .arg("-C")
                    .arg(&dir),
            );
            if !outcome.success() {
                panic!(
                    "cannot unpack pi into {}: {}",
                    dir.display(),
                    outcome.stderr
                );
            }
        }
        cli
    })
}

/// An OpenAI-compatible model provider as pi's `models.json` declares it.
#[derive(Debug, Clone)]
pub struct Provider {
    /// The provider id (`--provider`).
    pub name: String,
    /// The API base URL, e.g. `https://model.test/v1`.
    pub base_url: String,
    /// The model id (`--model`).
    pub model: String,
    /// The `apiKey` value: a literal, or `$NAME` for the environment variable NAME
    /// (pi 1.5 resolves `$NAME` and `${NAME}` from its environment).
    pub api_key: String,
}

impl Provider {
    /// The `models.json` declaring this provider (`"api": "openai-completions"`).
    pub fn models_json(&self) -> String {
        format!(
            r#"{{
  "providers": {{
    "{name}": {{
      "baseUrl": "{base_url}",
      "api": "openai-completions",
      "apiKey": "{api_key}",
      "models": [{{ "id": "{model}" }}]
    }}
  }}
}}
"#,
            name = self.name,
            base_url = self.base_url,
            model = self.model,
            api_key = self.api_key
        )
    }

    /// pi's arguments selecting this provider's model.
    pub fn args(&self) -> [&str; 4] {
        ["--provider", &self.name, "--model", &self.model]
    }

    /// Creates `home/.pi/agent/models.json` declaring this provider; returns pi's agent
    /// directory.
    pub fn write_agent_dir(&self, home: &Path) -> PathBuf {
        let agent = home.join(".pi/agent");
        std::fs::create_dir_all(&agent)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", agent.display()));
        let models = agent.join("models.json");
        std::fs::write(&models, self.models_json())
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", models.display()));
        agent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_json_declares_an_openai_compatible_provider() {
        let provider = Provider {
            name: "mock".to_owned(),
            base_url: "https://model.test/v1".to_owned(),
            model: "mock-model".to_owned(),
            api_key: "$MOCK_KEY".to_owned(),
        };
        let json: serde_json::Value = serde_json::from_str(&provider.models_json()).unwrap();
        let mock = &json["providers"]["mock"];
        assert_eq!(mock["baseUrl"], "https://model.test/v1");
        assert_eq!(mock["api"], "openai-completions");
        assert_eq!(mock["apiKey"], "$MOCK_KEY");
        assert_eq!(mock["models"][0]["id"], "mock-model");
        assert_eq!(
            provider.args(),
            ["--provider", "mock", "--model", "mock-model"]
        );
    }
}
