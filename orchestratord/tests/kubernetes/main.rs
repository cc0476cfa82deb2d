//! deploy/kubernetes and deploy/Dockerfile, checked offline. Every kustomization renders (`kubectl
//! kustomize`) and validates strictly against the Kubernetes schemas (`kubernetes-validate
//! --strict`); the rendered objects agree with the daemons — ports and `[server] addr`, probes and
//! the routes served without a token, the configuration files read by the daemons' own parsers,
//! the discovery name and the headless Service, each environment variable set is one the binary
//! reads, the Secret's keys, the grace period, unprivileged pods — and with the Dockerfile's
//! images. kubectl and kubernetes-validate come from the machine or `cargo xtask k8s-venv`; a
//! test whose tool is missing says so by name (`skipped: <test>: <why>`) and returns.

mod image;
mod manifests;
mod pods;
mod probes;
mod support;

const ORCHD: (&str, &str) = ("Deployment", "orchestratord");
const POOLD: (&str, &str) = ("DaemonSet", "pool-managerd");
/// The workloads and the crate folder of each one's binary.
const WORKLOADS: [((&str, &str), &str); 2] = [(ORCHD, "orchestratord"), (POOLD, "pool-managerd")];
