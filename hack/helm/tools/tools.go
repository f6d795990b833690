//go:build tools

// Package tools pins helm and kustomize so that `go build helm.sh/helm/v4/cmd/helm` and
// `go build sigs.k8s.io/kustomize/kustomize/v5` resolve inside this module. The binaries are
// built from the published modules, unchanged.
package tools

import (
	_ "helm.sh/helm/v4/cmd/helm"
	_ "sigs.k8s.io/kustomize/kustomize/v5"
)
