//! The kustomizations render, validate strictly against the Kubernetes schemas, and agree with
//! the daemons' configuration parsers, ports, routes and the discovery name.

use crate::support::{self as k8s, Rendered};
use orchestratord::config::Config;
use serde_json::Value;
use std::net::SocketAddr;

use crate::{ORCHD, POOLD};
/// The oldest Kubernetes the manifests are for: the preStop `sleep` action is on from 1.30.
const OLDEST: &str = "1.30.0";

/// The test's path, as skip lines name it.
fn path(test: &str) -> String {
    format!("{}::{test}", module_path!())
}

fn renders(test: &str) -> Option<&'static [Rendered]> {
    k8s::renders(&path(test))
}

#[test]
fn every_kustomization_renders_the_whole_deployment() {
    let Some(all) = renders("every_kustomization_renders_the_whole_deployment") else {
        return;
    };
    let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
    assert!(
        names.contains(&"base") && names.contains(&"overlays/cpu-test"),
        "{names:?}"
    );
    for rendered in all {
        let mut kinds: Vec<&str> = rendered
            .objects
            .iter()
            .filter_map(|o| o["kind"].as_str())
            .collect();
        kinds.sort();
        let want = [
            "ConfigMap",
            "ConfigMap",
            "DaemonSet",
            "Deployment",
            "Namespace",
            "Service",
            "Service",
        ];
        assert_eq!(kinds, want, "{}", rendered.name);
        let namespace = rendered.namespace();
        for object in rendered.objects.iter().filter(|o| o["kind"] != "Namespace") {
            assert_eq!(
                object["metadata"]["namespace"], namespace,
                "{}: {object}",
                rendered.name
            );
        }
        assert_eq!(
            rendered.object(ORCHD.0, ORCHD.1)["spec"]["replicas"],
            1,
            "{}",
            rendered.name
        );
    }
}

#[test]
fn the_manifests_validate_strictly_against_the_kubernetes_schemas() {
    let test = "the_manifests_validate_strictly_against_the_kubernetes_schemas";
    // One skip line at most: the validator is looked for once the manifests rendered.
    let Some(all) = renders(test) else {
        return;
    };
    let Some(validator) = k8s::validator(&path(test)) else {
        return;
    };
    let example = k8s::secret_example_yaml();
    let mut inputs: Vec<(&str, &str, usize)> = all
        .iter()
        .map(|r| (r.name.as_str(), r.yaml.as_str(), r.objects.len()))
        .collect();
    inputs.push(("secret.example.yaml", &example, 1));
    for (name, yaml, count) in inputs {
        for version in [Some(OLDEST), None] {
            let mut args = vec!["--strict"];
            args.extend(version.map(|v| ["-k", v]).into_iter().flatten());
            args.push("-");
            let output = k8s::run_bounded(&validator, &args, yaml);
            let report = format!("{}{}", output.stdout, output.stderr);
            assert!(
                output.status.success(),
                "{name} ({version:?}) does not validate:\n{report}"
            );
            // Every object was checked against a schema (none passed over as unknown).
            let passed = report
                .lines()
                .filter(|l| l.contains(" passed for resource "))
                .count();
            assert_eq!(passed, count, "{name} ({version:?}):\n{report}");
        }
    }
}

/// The TOML files the workloads' `--config` name, from their ConfigMaps.
fn config_of(rendered: &Rendered, workload: (&str, &str)) -> (String, String) {
    rendered.config_file(workload.0, workload.1)
}

fn server_addr(toml_text: &str) -> SocketAddr {
    let table: toml::Table = toml::from_str(toml_text).expect("the TOML parses");
    let addr = table["server"]["addr"].as_str().expect("[server] addr");
    addr.parse().expect("addr is host:port")
}

#[test]
fn orchestratord_parses_its_config_map_and_listens_on_the_container_port() {
    let Some(all) =
        renders("orchestratord_parses_its_config_map_and_listens_on_the_container_port")
    else {
        return;
    };
    for rendered in all {
        let (path, text) = config_of(rendered, ORCHD);
        let addr = server_addr(&text);
        let container = rendered.container(ORCHD.0, ORCHD.1);
        assert_eq!(
            addr.port(),
            k8s::port(container, "http"),
            "{}",
            rendered.name
        );
        assert!(
            addr.ip().is_unspecified(),
            "{}: probes reach the pod's address",
            rendered.name
        );
        let service = rendered.object("Service", "orchestratord");
        assert_eq!(
            service["spec"]["ports"][0]["targetPort"], "http",
            "{}",
            rendered.name
        );
        assert_eq!(
            service["spec"]["selector"],
            rendered.object(ORCHD.0, ORCHD.1)["spec"]["selector"]["matchLabels"]
        );
        if let Err(error) = Config::parse(&text, &path) {
            panic!(
                "{}: orchestratord refuses its ConfigMap: {error}",
                rendered.name
            );
        }
    }
}

#[test]
fn pool_managerd_parses_its_config_map_and_listens_on_the_container_port() {
    let Some(all) =
        renders("pool_managerd_parses_its_config_map_and_listens_on_the_container_port")
    else {
        return;
    };
    for rendered in all {
        let (_, text) = config_of(rendered, POOLD);
        let dir = tempfile::tempdir().expect("a temporary folder");
        let file = dir.path().join("pools.toml");
        std::fs::write(&file, &text).expect("pools.toml is written");
        let pools =
            pool_managerd::read_pools(&file).unwrap_or_else(|e| panic!("{}: {e}", rendered.name));
        assert!(
            pools.iter().all(|p| p.spawns()),
            "{}: the node runs its engines",
            rendered.name
        );
        let server =
            pool_managerd::read_server(&file).unwrap_or_else(|e| panic!("{}: {e}", rendered.name));
        assert_eq!(
            server.addr.port(),
            k8s::port(rendered.container(POOLD.0, POOLD.1), "control")
        );
        assert!(
            server.addr.ip().is_unspecified(),
            "{}: probes reach the pod's address",
            rendered.name
        );
        // The pod's environment is enough to start: POD_IP, AUTH_TOKEN, ENGINE_API_KEY.
        let env = crate::pods::env(rendered.container(POOLD.0, POOLD.1));
        let pod_ip = env.contains_key("POD_IP").then(|| [10, 0, 0, 5].into());
        let secret = |name| {
            env.contains_key(name)
                .then(|| logging::Secret::new(format!("{name}-value")))
        };
        let started = pool_managerd::Settings::check(
            &server,
            pod_ip,
            secret("AUTH_TOKEN"),
            secret("ENGINE_API_KEY"),
        );
        if let Err(error) = started {
            panic!("{}: pool-managerd would not start: {error}", rendered.name);
        }
        // Orchestratord's pool format, which pool-managerd reads leniently, holds strictly.
        let mut table: toml::Table = toml::from_str(&text).expect("the TOML parses");
        table.insert(
            "server".into(),
            toml::Value::Table(toml::from_str("addr = \"127.0.0.1:0\"").unwrap()),
        );
        let strict = toml::to_string(&table).expect("TOML out");
        if let Err(error) = Config::parse(&strict, &format!("{} pools.toml", rendered.name)) {
            panic!("{error}");
        }
    }
}

#[test]
fn orchestratord_discovers_the_headless_service_of_the_pool_managerd_pods() {
    let Some(all) =
        renders("orchestratord_discovers_the_headless_service_of_the_pool_managerd_pods")
    else {
        return;
    };
    for rendered in all {
        let service = rendered.object("Service", "pool-managerd");
        let spec = &service["spec"];
        assert_eq!(spec["clusterIP"], "None", "{}: headless", rendered.name);
        assert_eq!(spec["publishNotReadyAddresses"], true, "{}", rendered.name);
        let pods = &rendered.object(POOLD.0, POOLD.1)["spec"]["template"]["metadata"]["labels"];
        let selected = spec["selector"].as_object().expect("a selector");
        assert!(
            selected.iter().all(|(k, v)| pods[k] == *v),
            "{}: the selector picks the pods",
            rendered.name
        );
        assert_eq!(
            spec["ports"][0]["targetPort"], "control",
            "{}",
            rendered.name
        );
        let (_, text) = config_of(rendered, ORCHD);
        let table: toml::Table = toml::from_str(&text).expect("the TOML parses");
        let discover = table["cluster"]["discover"]
            .as_str()
            .expect("[cluster] discover");
        let want = format!(
            "pool-managerd.{}.svc.cluster.local:{}",
            rendered.namespace(),
            spec["ports"][0]["port"]
        );
        assert_eq!(discover, want, "{}", rendered.name);
    }
}

/// The `[[pools]]` tables of a TOML text, by id.
fn pools(text: &str) -> std::collections::BTreeMap<String, toml::Table> {
    let table: toml::Table = toml::from_str(text).expect("the TOML parses");
    let pools = table["pools"].as_array().expect("[[pools]]");
    pools
        .iter()
        .map(|pool| {
            let pool = pool.as_table().expect("a pool table").clone();
            (pool["id"].as_str().expect("an id").to_string(), pool)
        })
        .collect()
}

#[test]
fn orchestratord_queues_for_the_pools_the_nodes_run() {
    let Some(all) = renders("orchestratord_queues_for_the_pools_the_nodes_run") else {
        return;
    };
    for rendered in all {
        let queued = pools(&config_of(rendered, ORCHD).1);
        let run = pools(&config_of(rendered, POOLD).1);
        let ids = |p: &std::collections::BTreeMap<String, toml::Table>| {
            p.keys().cloned().collect::<Vec<_>>()
        };
        assert_eq!(
            ids(&queued),
            ids(&run),
            "{}: the same pools on both sides",
            rendered.name
        );
        for (id, node_side) in &run {
            let queue_side = &queued[id];
            assert_eq!(
                queue_side.get("remote"),
                Some(&toml::Value::Boolean(true)),
                "{}: {id}",
                rendered.name
            );
            // What only the node has: how it runs the replicas.
            let shared = node_side
                .iter()
                .filter(|(key, _)| !["replicas", "spawn"].contains(&key.as_str()));
            for (key, value) in shared {
                assert_eq!(
                    queue_side.get(key),
                    Some(value),
                    "{}: pool {id}: {key}",
                    rendered.name
                );
            }
        }
    }
}

/// Each probe of the workload: (path, port name).
pub fn probes(container: &Value) -> Vec<(String, String)> {
    ["livenessProbe", "readinessProbe"]
        .iter()
        .map(|probe| {
            let get = &container[probe]["httpGet"];
            let path = get["path"]
                .as_str()
                .unwrap_or_else(|| panic!("{probe} has an HTTP path"));
            let port = get["port"]
                .as_str()
                .unwrap_or_else(|| panic!("{probe} names its port"));
            (path.to_string(), port.to_string())
        })
        .collect()
}

#[test]
fn probes_are_health_and_ready_on_the_served_port() {
    let Some(all) = renders("probes_are_health_and_ready_on_the_served_port") else {
        return;
    };
    for rendered in all {
        for ((kind, name), port) in [(ORCHD, "http"), (POOLD, "control")] {
            let found = probes(rendered.container(kind, name));
            let want = [
                ("/health".to_string(), port.to_string()),
                ("/ready".to_string(), port.to_string()),
            ];
            assert_eq!(found, want, "{}: {name}", rendered.name);
        }
        for (path, _) in probes(rendered.container(ORCHD.0, ORCHD.1)) {
            let route = orchestratord::api::ROUTES.iter().find(|r| r.path == path);
            assert!(
                route.is_some_and(|r| r.method == "GET"),
                "orchestratord serves GET {path}"
            );
        }
    }
}
