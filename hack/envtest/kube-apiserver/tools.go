//go:build tools

// Package tools pins k8s.io/kubernetes so that `go build k8s.io/kubernetes/cmd/kube-apiserver`
// resolves inside this module. The binary is built from the published module, unchanged.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
