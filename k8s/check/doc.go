// Package check verifies hotpath's Kubernetes manifests without a cluster.
//
// Its tests render every kustomize overlay in-process, decode each object
// strictly into its Kubernetes API type (an unknown or misspelt field is an
// error) and assert the invariants that tie the manifests to the server, the
// repository's config.toml and the Dockerfile: probe paths and ports, the
// shutdown timeline, autoscaling, disruption budget, network policy and the
// restricted security context. With the monitoring component added, they
// follow the ServiceMonitor to the admin port, run the alert rules through
// rulefmt, and check every PromQL expression of the rules and the Grafana
// dashboard against the /metrics of the real server. Run it with
// `make k8s-check`.
package check
