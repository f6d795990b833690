{{/* The release's full name, at most 63 characters. */}}
{{- define "pve-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "pve-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pve-operator.labels" -}}
{{ include "pve-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Values.managedBy | default .Release.Service }}
{{- if not .Values.managedBy }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}
{{- end -}}

{{- define "pve-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "pve-operator.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the default Proxmox connection, if there is one. */}}
{{- define "pve-operator.proxmoxSecret" -}}
{{- if .Values.proxmox.existingSecret -}}
{{- .Values.proxmox.existingSecret -}}
{{- else if .Values.proxmox.config -}}
{{- printf "%s-proxmox" (include "pve-operator.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/*
The namespaces where ProxmoxCluster credentials Secrets may be read, as a JSON list: the watched
namespace, or credentialsNamespaces, or the release's namespace; ["*"] for all of them.
*/}}
{{- define "pve-operator.credentialsNamespaces" -}}
{{- $listed := .Values.credentialsNamespaces | default list -}}
{{- if .Values.watchNamespace -}}
{{- if and $listed (ne (toJson (uniq $listed)) (toJson (list .Values.watchNamespace))) -}}
{{- fail (printf "credentialsNamespaces %s: with watchNamespace %q the controller sees ProxmoxClusters only there; leave credentialsNamespaces empty" (toJson $listed) .Values.watchNamespace) -}}
{{- end -}}
{{- list .Values.watchNamespace | toJson -}}
{{- else if has "*" $listed -}}
{{- if gt (len $listed) 1 -}}
{{- fail (printf "credentialsNamespaces %s: \"*\" already means every namespace; give it alone" (toJson $listed)) -}}
{{- end -}}
{{- list "*" | toJson -}}
{{- else if $listed -}}
{{- $listed | uniq | toJson -}}
{{- else -}}
{{- list .Release.Namespace | toJson -}}
{{- end -}}
{{- end -}}

{{/*
The rules of the controller's resources, in the watched namespace or cluster-wide. Each verb is
one the controller uses (tests/e2e/deploy.rs removes each in turn and sees the call fail):
- machinerequests: list+watch (the controller's cache), patch (the finalizer, a JSON patch);
- machinerequests/status: patch (server-side apply of status);
- proxmoxclusters: get (credentials lookup), list+watch (the cache);
- proxmoxclusters/status: patch;
- events.k8s.io events: create, patch (kube's event Recorder, which patches repeated events).
Secrets are in "pve-operator.secretRules", granted only where credentials live.
*/}}
{{- define "pve-operator.rules" -}}
- apiGroups: [pve-operator.dev]
  resources: [machinerequests]
  verbs: [list, watch, patch]
- apiGroups: [pve-operator.dev]
  resources: [machinerequests/status]
  verbs: [patch]
- apiGroups: [pve-operator.dev]
  resources: [proxmoxclusters]
  verbs: [get, list, watch]
- apiGroups: [pve-operator.dev]
  resources: [proxmoxclusters/status]
  verbs: [patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}

{{/* Secrets: get (the credentials of a ProxmoxCluster), list+watch (credential changes). */}}
{{- define "pve-operator.secretRules" -}}
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
{{- end -}}
