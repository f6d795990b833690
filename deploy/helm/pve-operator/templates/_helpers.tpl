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
The namespaces whose MachineRequests may use the default connection, as a comma-separated flag
value; empty when the binary's default (the watched namespace, else its own) applies.
*/}}
{{- define "pve-operator.defaultAllowedNamespaces" -}}
{{- $listed := .Values.proxmox.allowedNamespaces | default list | uniq -}}
{{- if and (has "*" $listed) (gt (len $listed) 1) -}}
{{- fail (printf "proxmox.allowedNamespaces %s: \"*\" already means every namespace; give it alone" (toJson $listed)) -}}
{{- end -}}
{{- if and .Values.watchNamespace $listed (ne (toJson $listed) (toJson (list .Values.watchNamespace))) -}}
{{- fail (printf "proxmox.allowedNamespaces %s: with watchNamespace %q the controller sees MachineRequests only there; leave proxmox.allowedNamespaces empty" (toJson $listed) .Values.watchNamespace) -}}
{{- end -}}
{{- join "," $listed -}}
{{- end -}}

{{/*
The rules of the controller's resources, in the watched namespace or cluster-wide. Each verb is
one the controller uses (tests/e2e/deploy/rbac.rs removes each in turn and sees the call fail):
- machinerequests: list+watch (the controller's cache), patch (the finalizer, a JSON patch);
- machinerequests/status: patch (server-side apply of status);
- proxmoxclusters: get (a lookup when the cache has not seen a new one yet), list+watch (the cache);
- proxmoxclusters/status: patch;
- proxmoximages: list+watch (the cache), patch (the finalizer);
- proxmoximages/status: patch;
- events.k8s.io events: create, patch (kube's event Recorder, which patches repeated events).
The cluster-scoped rules are in "pve-operator.identityRules", the Secrets in
"pve-operator.secretRules" (the identities' Secrets, by name).
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
- apiGroups: [pve-operator.dev]
  resources: [proxmoximages]
  verbs: [list, watch, patch]
- apiGroups: [pve-operator.dev]
  resources: [proxmoximages/status]
  verbs: [patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}

{{/*
Cluster-scoped, whatever watchNamespace says:
- proxmoxidentities: get (a lookup when the cache has not seen a new one yet), list+watch;
- proxmoxidentities/status: patch;
- namespaces: get, list+watch (their labels, for allowedNamespaces.selector).
*/}}
{{- define "pve-operator.identityRules" -}}
- apiGroups: [pve-operator.dev]
  resources: [proxmoxidentities]
  verbs: [get, list, watch]
- apiGroups: [pve-operator.dev]
  resources: [proxmoxidentities/status]
  verbs: [patch]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
{{- end -}}

{{/*
The identities' Secrets, by name: list+watch of one name at a time (the controller's watch of each
Secret, with a field selector on metadata.name, which RBAC matches against resourceNames). No get:
the controller never reads a Secret other than through that watch.
*/}}
{{- define "pve-operator.secretRules" -}}
- apiGroups: [""]
  resources: [secrets]
  resourceNames: {{ toJson (.Values.identitySecrets | uniq) }}
  verbs: [list, watch]
{{- end -}}
