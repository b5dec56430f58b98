//! Image builds through the engine: an embedded-style build context sent as a tar
//! stream, the inputs-hash label, a rebuild only when the inputs change or one is
//! forced, and a failing build reported with its output.

use std::collections::HashMap;

use agent_sandbox::images::{self, ImageError, ImageSpec, ImageState};
use agent_sandbox::{Engine, EngineError};
use agent_sandbox_e2e::{debian_image, docker, docker_ok, docker_scope};

/// A tiny Dockerfile with two stages, built FROM the Debian test image.
const DOCKERFILE: &str =
    "ARG BASE\nFROM ${BASE} AS base\nCOPY hello.txt /hello.txt\nFROM base AS failing\nRUN exit 7\n";

/// Removes the test's image tags, also when the test fails.
struct Tags(Vec<String>);

impl Drop for Tags {
    fn drop(&mut self) {
        for tag in &self.0 {
            let _ = docker(["image", "rm", "--force", tag]);
        }
    }
}

fn spec(tag: &str, target: &str, hello: &'static str) -> ImageSpec {
    ImageSpec {
        tag: tag.to_owned(),
        target: target.to_owned(),
        build_args: HashMap::from([("BASE".to_owned(), debian_image().to_owned())]),
        files: vec![("Dockerfile", DOCKERFILE), ("hello.txt", hello)],
    }
}

#[tokio::test]
async fn images_are_rebuilt_only_when_their_inputs_change_or_on_request() {
    let Some(_scope) = docker_scope() else { return };
    let tag = format!("agent-sandbox-test/image-build:{}", std::process::id());
    let _tags = Tags(vec![tag.clone()]);
    let engine = Engine::connect().await.unwrap();
    let first = spec(&tag, "base", "one\n");
    assert_eq!(
        images::ensure(&engine, &first, false).await.unwrap(),
        ImageState::Built
    );
    let id = docker_ok(["image", "inspect", "--format", "{{.Id}}", &tag]);
    assert_eq!(
        images::ensure(&engine, &first, false).await.unwrap(),
        ImageState::UpToDate
    );
    assert_eq!(
        docker_ok(["image", "inspect", "--format", "{{.Id}}", &tag]),
        id
    );
    let label = docker_ok([
        "image",
        "inspect",
        "--format",
        "{{index .Config.Labels \"agent-sandbox.inputs-hash\"}}",
        &tag,
    ]);
    assert_eq!(label, first.inputs_hash());
    assert_eq!(
        images::ensure(&engine, &first, true).await.unwrap(),
        ImageState::Built
    );
    let changed = spec(&tag, "base", "two\n");
    assert_eq!(
        images::ensure(&engine, &changed, false).await.unwrap(),
        ImageState::Built
    );
    let content = docker_ok([
        "run",
        "--rm",
        "--label",
        "agent-sandbox.test=1",
        &tag,
        "cat",
        "/hello.txt",
    ]);
    assert_eq!(content, "two");
}

#[tokio::test]
async fn a_failing_build_reports_the_engine_message_and_the_output() {
    let Some(_scope) = docker_scope() else { return };
    let tag = format!("agent-sandbox-test/image-fail:{}", std::process::id());
    let _tags = Tags(vec![tag.clone()]);
    let engine = Engine::connect().await.unwrap();
    let error = images::ensure(&engine, &spec(&tag, "failing", "x\n"), false)
        .await
        .unwrap_err();
    let text = agent_sandbox::chain(&error);
    assert!(
        matches!(error, ImageError::Engine(EngineError::BuildFailed { .. })),
        "{text}"
    );
    // The engine's message and the output of the failing step.
    assert!(
        text.contains(&tag) && text.contains("returned a non-zero code: 7"),
        "{text}"
    );
    assert!(text.contains("RUN exit 7"), "{text}");
    assert!(
        docker(["image", "inspect", &tag]).code != 0,
        "a failed build left an image"
    );
}
