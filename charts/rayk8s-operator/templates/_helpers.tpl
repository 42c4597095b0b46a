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

{{/* The log file path, when logging.baseDir and logging.fileName are both set. */}}
{{- define "rayk8s-operator.logFile" -}}
{{- if and .Values.logging.baseDir .Values.logging.fileName }}
{{- printf "%s/%s" (trimSuffix "/" .Values.logging.baseDir) .Values.logging.fileName }}
{{- end }}
{{- end }}

{{/* The --feature-gates value, empty when no gate is listed. */}}
{{- define "rayk8s-operator.featureGates" -}}
{{- $gates := list }}
{{- range .Values.featureGates }}{{ $gates = append $gates (printf "%s=%t" .name .enabled) }}{{ end }}
{{- join "," $gates }}
{{- end }}

{{/* The config.ray.io/v1alpha1 Configuration the operator reads with configuration.enabled. */}}
{{- define "rayk8s-operator.configuration" -}}
{{- $c := dict "apiVersion" "config.ray.io/v1alpha1" "kind" "Configuration" }}
{{- $_ := set $c "metricsAddr" (printf ":%v" .Values.metrics.port) }}
{{- $_ = set $c "probeAddr" (printf ":%v" .Values.probes.port) }}
{{- $_ = set $c "enableLeaderElection" .Values.leaderElectionEnabled }}
{{- with .Values.leaderElectionNamespace }}{{ $_ = set $c "leaderElectionNamespace" . }}{{ end }}
{{- $_ = set $c "reconcileConcurrency" (int64 .Values.reconcileConcurrency) }}
{{- with include "rayk8s-operator.watchNamespaces" . }}{{ $_ = set $c "watchNamespace" . }}{{ end }}
{{- $_ = set $c "logStdoutEncoder" .Values.logging.stdoutEncoder }}
{{- with include "rayk8s-operator.logFile" . }}{{ $_ = set $c "logFile" . }}{{ end }}
{{- $_ = set $c "logFileEncoder" .Values.logging.fileEncoder }}
{{- if .Values.batchScheduler.enabled }}{{ $_ = set $c "enableBatchScheduler" true }}{{ end }}
{{- with .Values.batchScheduler.name }}{{ $_ = set $c "batchScheduler" . }}{{ end }}
{{- $_ = set $c "useKubernetesProxy" .Values.useKubernetesProxy }}
{{- $_ = set $c "enableMetrics" .Values.metrics.enabled }}
{{- $_ = set $c "qps" .Values.kubeClient.qps }}
{{- $_ = set $c "burst" (int64 .Values.kubeClient.burst) }}
{{- with .Values.configuration.defaultContainerEnvs }}{{ $_ = set $c "defaultContainerEnvs" . }}{{ end }}
{{- with .Values.configuration.defaultPodAnnotations }}{{ $_ = set $c "defaultPodAnnotations" . }}{{ end }}
{{- with .Values.configuration.defaultPodLabels }}{{ $_ = set $c "defaultPodLabels" . }}{{ end }}
{{- with .Values.configuration.headSidecarContainers }}{{ $_ = set $c "headSidecarContainers" . }}{{ end }}
{{- with .Values.configuration.workerSidecarContainers }}{{ $_ = set $c "workerSidecarContainers" . }}{{ end }}
{{- toYaml $c }}
{{- end }}
