//! The pods against the binaries: each variable set is read; the tokens line up in one Secret;
//! the grace period covers orchestratord's drain; unprivileged pods; GPU base, CPU overlay.

use crate::support::{self as k8s, source::Sources, Rendered};
use crate::{ORCHD, POOLD, WORKLOADS};
use serde_json::Value;
use std::collections::BTreeMap;

/// shutdown::drain's wait for the tasks it ended at the grace deadline to wind down.
const RUNNERS_WAIT_MS: u64 = 2_000;
/// pool-managerd's stop (pool-managerd/src/daemon.rs) besides the wait for busy engines: the
/// control API closes, then the engines stop, each within its bound.
const POOL_MANAGERD_STOP_MS: u64 = pool_managerd::daemon::CLOSE_WITHIN.as_millis() as u64
    + pool_managerd::daemon::ENGINES_STOP_WITHIN.as_millis() as u64;

fn renders(test: &str) -> Option<&'static [Rendered]> {
    k8s::renders(&format!("{}::{test}", module_path!()))
}

/// The container's environment: name → its `value` or `valueFrom`.
pub fn env(container: &Value) -> BTreeMap<&str, &Value> {
    let entries = container["env"].as_array().into_iter().flatten();
    let mut found = BTreeMap::new();
    for entry in entries {
        let name = entry["name"].as_str().expect("a named variable");
        let value = if entry["value"].is_null() {
            &entry["valueFrom"]
        } else {
            &entry["value"]
        };
        assert!(found.insert(name, value).is_none(), "{name} is set twice");
    }
    found
}

#[test]
fn every_variable_the_pods_set_is_read_by_their_binary() {
    let Some(all) = renders("every_variable_the_pods_set_is_read_by_their_binary") else {
        return;
    };
    let root = k8s::workspace();
    let orchestratord = Sources::of(&root, "orchestratord");
    // The scan itself: names read directly, through a constant and by clap; and one never read.
    for read in ["AUTH_TOKEN", "SLOG_LEVEL", "LLORCH_CACHE", "ORCHD_ADDR"] {
        assert!(orchestratord.reads(read), "the scan finds {read}");
    }
    assert!(!orchestratord.reads("LLORCH_NO_SUCH_VARIABLE"));
    for rendered in all {
        for ((kind, name), crate_dir) in WORKLOADS {
            let sources = Sources::of(&root, crate_dir);
            let unread: Vec<&str> = env(rendered.container(kind, name))
                .into_keys()
                .filter(|variable| !sources.reads(variable))
                .collect();
            assert!(
                unread.is_empty(),
                "{}: {name} is given {unread:?}, which no source of {:?} reads",
                rendered.name,
                sources.crates
            );
        }
    }
}

/// The Secret key a variable comes from.
fn secret_key<'a>(container: &'a Value, variable: &str) -> (&'a str, &'a str) {
    let reference = &env(container)[variable]["secretKeyRef"];
    assert_ne!(reference["optional"], true, "{variable} is required");
    let name = reference["name"].as_str();
    let key = reference["key"].as_str();
    name.zip(key)
        .unwrap_or_else(|| panic!("{variable} comes from a Secret"))
}

#[test]
fn the_tokens_come_from_one_secret_whose_keys_line_up() {
    let Some(all) = renders("the_tokens_come_from_one_secret_whose_keys_line_up") else {
        return;
    };
    let example = k8s::yaml_documents(&k8s::secret_example_yaml()).remove(0);
    let keys = example["stringData"]
        .as_object()
        .expect("the example's stringData");
    assert!(keys
        .values()
        .all(|v| v.as_str().is_some_and(|v| v.starts_with("PLACEHOLDER-"))));
    for rendered in all {
        let at = |kind, name, variable| {
            let (secret, key) = secret_key(rendered.container(kind, name), variable);
            assert_eq!(
                secret, example["metadata"]["name"],
                "{}: {variable}",
                rendered.name
            );
            assert!(
                keys.contains_key(key),
                "{}: the example has no {key}",
                rendered.name
            );
            key
        };
        let clients = at(ORCHD.0, ORCHD.1, "AUTH_TOKEN");
        let control = at(ORCHD.0, ORCHD.1, "POOL_MANAGERD_TOKEN");
        assert_eq!(
            control,
            at(POOLD.0, POOLD.1, "AUTH_TOKEN"),
            "{}",
            rendered.name
        );
        assert_ne!(
            clients, control,
            "{}: clients do not get the control token",
            rendered.name
        );
        let engines = at(ORCHD.0, ORCHD.1, "ENGINE_API_KEY");
        assert_eq!(
            engines,
            at(POOLD.0, POOLD.1, "ENGINE_API_KEY"),
            "{}",
            rendered.name
        );
        assert!(
            rendered.objects.iter().all(|o| o["kind"] != "Secret"),
            "no token is applied from the repository"
        );
        let pod_ip = &env(rendered.container(POOLD.0, POOLD.1))["POD_IP"];
        assert_eq!(
            pod_ip["fieldRef"]["fieldPath"], "status.podIP",
            "{}",
            rendered.name
        );
    }
}

#[test]
fn the_grace_period_lets_running_streams_finish() {
    let Some(all) = renders("the_grace_period_lets_running_streams_finish") else {
        return;
    };
    for rendered in all {
        let (path, text) = rendered.config_file(ORCHD.0, ORCHD.1);
        let table: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        let grace_ms = table["server"]["shutdown_grace_ms"]
            .as_integer()
            .expect("shutdown_grace_ms");
        let grace_ms = u64::try_from(grace_ms).expect("a duration");
        let container = rendered.container(ORCHD.0, ORCHD.1);
        let pre_stop_s = container["lifecycle"]["preStop"]["sleep"]["seconds"]
            .as_u64()
            .expect("a preStop sleep");
        let close_wait_ms = orchestratord::shutdown::CLOSE_WAIT.as_millis() as u64;
        let needed_ms = pre_stop_s * 1000 + grace_ms + RUNNERS_WAIT_MS + close_wait_ms;
        let pod = rendered.pod(ORCHD.0, ORCHD.1);
        let period_s = pod["terminationGracePeriodSeconds"]
            .as_u64()
            .expect("a grace period");
        assert!(
            period_s * 1000 > needed_ms,
            "{}: {period_s} s < {needed_ms} ms",
            rendered.name
        );
        assert!(
            grace_ms > 0,
            "{}: streams get time to finish",
            rendered.name
        );
        // pool-managerd waits up to stop_grace_ms for busy engines, then stops them.
        let (path, text) = rendered.config_file(POOLD.0, POOLD.1);
        let table: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        let server: pool_managerd::ServerSection = table
            .get("server")
            .cloned()
            .map(|s| s.try_into().unwrap_or_else(|e| panic!("{path}: {e}")))
            .unwrap_or_default();
        assert!(
            server.stop_grace_ms > 0,
            "{}: streams on a node get time to finish",
            rendered.name
        );
        let pod = rendered.pod(POOLD.0, POOLD.1);
        let period_s = pod["terminationGracePeriodSeconds"]
            .as_u64()
            .expect("a grace period");
        let needed_ms = server.stop_grace_ms + POOL_MANAGERD_STOP_MS;
        assert!(
            period_s * 1000 > needed_ms,
            "{}: pool-managerd gets the time to let streams finish and stop its engines: {period_s} s < {needed_ms} ms",
            rendered.name
        );
    }
}

#[test]
fn the_pods_run_unprivileged() {
    let Some(all) = renders("the_pods_run_unprivileged") else {
        return;
    };
    for rendered in all {
        let namespace = rendered.object("Namespace", rendered.namespace());
        let labels = &namespace["metadata"]["labels"];
        assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
        for ((kind, name), _) in WORKLOADS {
            let pod = rendered.pod(kind, name);
            let context = &pod["securityContext"];
            let at = format!("{}: {name}", rendered.name);
            assert_eq!(context["runAsNonRoot"], true, "{at}");
            assert!(context["runAsUser"].as_u64().is_some_and(|u| u > 0), "{at}");
            assert_eq!(context["seccompProfile"]["type"], "RuntimeDefault", "{at}");
            assert_eq!(pod["automountServiceAccountToken"], false, "{at}");
            let container = rendered.container(kind, name);
            let context = &container["securityContext"];
            assert_eq!(context["allowPrivilegeEscalation"], false, "{at}");
            assert_eq!(context["readOnlyRootFilesystem"], true, "{at}");
            assert_eq!(
                context["capabilities"],
                serde_json::json!({"drop": ["ALL"]}),
                "{at}"
            );
            // Writable only where an emptyDir is mounted, each with a size limit.
            let volumes = pod["volumes"].as_array().expect("volumes");
            for mount in container["volumeMounts"].as_array().expect("mounts") {
                let volume = volumes
                    .iter()
                    .find(|v| v["name"] == mount["name"])
                    .expect("the volume");
                let writable = mount["readOnly"] != true;
                assert!(
                    !writable || volume["emptyDir"]["sizeLimit"].is_string(),
                    "{at}: {mount}"
                );
            }
            // The cache the binary writes to ($LLORCH_CACHE) is one of those.
            let cache = env(container)["LLORCH_CACHE"]
                .as_str()
                .expect("LLORCH_CACHE");
            let mounts = container["volumeMounts"].as_array().expect("mounts");
            let cache_mount = mounts.iter().find(|m| m["mountPath"] == cache);
            assert!(
                cache_mount.is_some_and(|m| m["readOnly"] != true),
                "{at}: {cache} is writable"
            );
            let resources = &container["resources"];
            for (class, what) in [
                ("requests", "cpu"),
                ("requests", "memory"),
                ("limits", "memory"),
            ] {
                assert!(resources[class][what].is_string(), "{at}: {class}.{what}");
            }
        }
    }
}

#[test]
fn the_gpu_base_asks_for_gpus_and_the_cpu_overlay_does_not() {
    let Some(all) = renders("the_gpu_base_asks_for_gpus_and_the_cpu_overlay_does_not") else {
        return;
    };
    for rendered in all {
        let pod = rendered.pod(POOLD.0, POOLD.1);
        let resources = &rendered.container(POOLD.0, POOLD.1)["resources"];
        let gpus = &resources["limits"]["nvidia.com/gpu"];
        let selector = &pod["nodeSelector"]["nvidia.com/gpu.present"];
        match rendered.name.as_str() {
            "base" => assert!(gpus.is_string() && selector == "true", "{pod}"),
            "overlays/cpu-test" => {
                assert!(gpus.is_null() && resources["requests"]["nvidia.com/gpu"].is_null());
                assert!(
                    pod["nodeSelector"].is_null() && pod["tolerations"].is_null(),
                    "{pod}"
                );
            }
            other => assert_eq!(gpus.is_string(), selector == "true", "{other}"),
        }
    }
}
