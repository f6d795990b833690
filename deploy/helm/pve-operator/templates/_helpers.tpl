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
The rules of the controller's resources, in the watched namespace or cluster-wide. Each verb is
one the controller uses (tests/e2e/deploy.rs removes each in turn and sees the call fail):
- machinerequests: list+watch (the controller's cache), patch (the finalizer, a JSON patch);
- machinerequests/status: patch (server-side apply of status);
- proxmoxclusters: get (credentials lookup), list+watch (the cache);
- proxmoxclusters/status: patch;
- secrets: get (the credentials of a ProxmoxCluster), list+watch (credential changes);
- events.k8s.io events: create, patch (kube's event Recorder, which patches repeated events).
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
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}
