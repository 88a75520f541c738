{{/* Names, labels and shared snippets of the MediaFlow chart. */}}

{{- define "mediaflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every resource name (at most 40 characters: suffixes follow). */}}
{{- define "mediaflow.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Cluster-scoped objects are shared by every release: their names carry the namespace. */}}
{{- define "mediaflow.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "mediaflow.fullname" .) | trunc 50 | trimSuffix "-" }}
{{- end }}

{{- define "mediaflow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels of one component: (dict "ctx" $ "component" "api"). */}}
{{- define "mediaflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mediaflow.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of a pod template whose pod must survive chart upgrades that do not change it
(the bundled MinIO: without persistence its data lives only as long as its pod). No chart or
app version: a new one would replace the pod. */}}
{{- define "mediaflow.stablePodLabels" -}}
{{ include "mediaflow.selectorLabels" . }}
app.kubernetes.io/part-of: mediaflow
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end }}

{{/* Every label of one component: (dict "ctx" $ "component" "api"). */}}
{{- define "mediaflow.labels" -}}
helm.sh/chart: {{ include "mediaflow.chart" .ctx }}
{{ include "mediaflow.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: mediaflow
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end }}

{{- define "mediaflow.image" -}}
{{- printf "%s:%s" .Values.image.repository (toString .Values.image.tag) }}
{{- end }}

{{- define "mediaflow.operatorServiceAccount" -}}
{{- printf "%s-operator" (include "mediaflow.fullname" .) }}
{{- end }}

{{- define "mediaflow.apiServiceAccount" -}}
{{- printf "%s-api" (include "mediaflow.fullname" .) }}
{{- end }}

{{- define "mediaflow.workerServiceAccount" -}}
{{- printf "%s-worker" (include "mediaflow.fullname" .) }}
{{- end }}

{{- define "mediaflow.jwtSecret" -}}
{{- .Values.api.jwt.existingSecret | default (printf "%s-jwt" (include "mediaflow.fullname" .)) }}
{{- end }}

{{- define "mediaflow.minioName" -}}
{{- printf "%s-minio" (include "mediaflow.fullname" .) }}
{{- end }}

{{/* The Secret holding accessKey/secretKey of the object storage. */}}
{{- define "mediaflow.storageSecret" -}}
{{- if eq .Values.storage.mode "external" }}
{{- required "storage.external.existingSecret is required when storage.mode is external" .Values.storage.external.existingSecret }}
{{- else }}
{{- .Values.storage.bundled.existingSecret | default (include "mediaflow.minioName" .) }}
{{- end }}
{{- end }}

{{/* The internal S3 endpoint URL (operator, API, worker pods). */}}
{{- define "mediaflow.storageEndpoint" -}}
{{- if eq .Values.storage.mode "external" }}
{{- required "storage.external.endpoint is required when storage.mode is external" .Values.storage.external.endpoint }}
{{- else }}
{{- printf "http://%s.%s.svc:%v" (include "mediaflow.minioName" .) .Release.Namespace .Values.storage.bundled.service.port }}
{{- end }}
{{- end }}

{{- define "mediaflow.publicEndpoint" -}}
{{- .Values.storage.publicEndpoint | default (include "mediaflow.storageEndpoint" .) }}
{{- end }}

{{/* The namespaces whose MediaJobs the operator handles, release namespace first. */}}
{{- define "mediaflow.watchedNamespaces" -}}
{{- $list := list .Release.Namespace }}
{{- range .Values.operator.watch.namespaces }}
{{- if not (has . $list) }}{{ $list = append $list . }}{{ end }}
{{- end }}
{{- toJson $list }}
{{- end }}

{{/* MEDIAFLOW_S3_* environment variables, shared by the operator and the API. */}}
{{- define "mediaflow.storageEnv" -}}
- name: MEDIAFLOW_S3_ENDPOINT
  value: {{ include "mediaflow.storageEndpoint" . | quote }}
- name: MEDIAFLOW_S3_PUBLIC_ENDPOINT
  value: {{ include "mediaflow.publicEndpoint" . | quote }}
- name: MEDIAFLOW_S3_ACCESS_KEY
  valueFrom:
    secretKeyRef: {name: {{ include "mediaflow.storageSecret" . | quote }}, key: accessKey}
- name: MEDIAFLOW_S3_SECRET_KEY
  valueFrom:
    secretKeyRef: {name: {{ include "mediaflow.storageSecret" . | quote }}, key: secretKey}
- name: MEDIAFLOW_S3_BUCKET
  value: {{ .Values.storage.bucket | quote }}
- name: MEDIAFLOW_S3_REGION
  value: {{ .Values.storage.region | quote }}
- name: MEDIAFLOW_RESULT_URL_TTL_SECONDS
  value: {{ .Values.storage.resultUrlTtlSeconds | quote }}
{{- end }}

{{/* The restricted Pod Security profile: pod level. */}}
{{- define "mediaflow.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile: {type: RuntimeDefault}
{{- end }}

{{/* The restricted Pod Security profile: container level. */}}
{{- define "mediaflow.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities: {drop: [ALL]}
seccompProfile: {type: RuntimeDefault}
{{- end }}

{{/* Scheduling constraints and pull secrets shared by every pod of the release. */}}
{{- define "mediaflow.podScheduling" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
- name: {{ . | quote }}
{{- end }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The prometheus.io/* pod annotations of a /metrics endpoint on the given port. */}}
{{- define "mediaflow.scrapeAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ . | quote }}
prometheus.io/path: /metrics
{{- end }}

{{/* The Secret of the API users' webhook signing secrets: the operator makes it, the API
    gets and updates it (api/mediaflow_api/webhooks/keys.py). */}}
{{- define "mediaflow.webhookKeysSecret" -}}
{{ include "mediaflow.fullname" . }}-webhook-keys
{{- end }}
