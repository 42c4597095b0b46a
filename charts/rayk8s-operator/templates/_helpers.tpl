{{- define "rayk8s-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rayk8s-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "rayk8s-operator.component" -}}
{{- default "rayk8s-operator" .Values.componentOverride }}
{{- end }}

{{- define "rayk8s-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rayk8s-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: {{ include "rayk8s-operator.component" . }}
{{- end }}

{{- define "rayk8s-operator.labels" -}}
{{ include "rayk8s-operator.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- with .Values.labels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "rayk8s-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rayk8s-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The namespaces the operator watches: empty means all. */}}
{{- define "rayk8s-operator.watchNamespaces" -}}
{{- if .Values.singleNamespaceInstall }}
{{- .Release.Namespace }}
{{- else }}
{{- join "," .Values.watchNamespace }}
{{- end }}
{{- end }}

{{/* Whether RBAC is a Role per watched namespace instead of a ClusterRole. */}}
{{- define "rayk8s-operator.namespacedRBAC" -}}
{{- if and .Values.crNamespacedRbacEnable (include "rayk8s-operator.watchNamespaces" .) }}true{{- end }}
{{- end }}

{{/* The operator's rules: config/rbac/role.yaml, generated from the controllers' markers (kept in sync by hack/sync-chart.sh). */}}
{{- define "rayk8s-operator.rules" -}}
{{- $role := .Files.Get "files/role.yaml" | fromYaml }}
{{- toYaml (default (list) $role.rules) }}
{{- end }}
