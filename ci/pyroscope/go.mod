// The Pyroscope server tests/push_pyroscope.rs pushes to, built by .ci/run from the Go
// module proxy (`go install ...@version` is refused: the proxy does not list the
// module's versions, which `go install` reads for deprecations; building inside this
// module needs only the pinned version).
//
// v1.9.0 is the newest release that builds from what the proxy serves here (checked
// 2026-12-01): v1.13.0 and later, v1.12.1, v1.10.0's zip are refused (403); v1.11.0 and
// v1.12.0 import OTLP packages from their in-tree `api` module, and no published
// `github.com/grafana/pyroscope/api` (v1.0.0, v1.5.0, v1.6.0) has them. v1.9.0's
// in-tree api matches the published api v1.0.0. The replaces are Pyroscope's own.
module pyroscope-ci

go 1.22.7

require github.com/grafana/pyroscope v1.9.0

replace (
	github.com/grafana/pyroscope/api => github.com/grafana/pyroscope/api v1.0.0
	github.com/hashicorp/memberlist => github.com/grafana/memberlist v0.3.1-0.20220708130638-bd88e10a3d91
	gopkg.in/yaml.v3 => github.com/colega/go-yaml-yaml v0.0.0-20220720105220-255a8d16d094
)
