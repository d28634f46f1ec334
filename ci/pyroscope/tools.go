//go:build tools

// Package tools pins the Pyroscope server's main package for `go build`.
package tools

import _ "github.com/grafana/pyroscope/cmd/pyroscope"
