{{/*
The chart's generated Secrets and the checksums of what each pod reads from Secrets.

Generated values are made once per render and kept on .Values (every template of a render
shares it): the Secret (secrets.yaml) and the checksum annotations of the pods that read it
must see the same random value. `lookup` finds the Secret of an earlier install, so upgrades
keep the JWT key and the MinIO credentials, and with them the checksums: no restart.
`helm template` (Argo CD) cannot look up: each render makes new values, new checksums and so
restarted pods. GitOps installs therefore name their own Secrets (`existingSecret`).
*/}}

{{/* {"jwt": {"signingKey": b64}, "minio": {"accessKey": b64, "secretKey": b64}}, each only
where the chart makes that Secret. */}}
{{- define "mediaflow.generatedSecrets" -}}
{{- if not (hasKey .Values "_mediaflowGeneratedSecrets") }}
{{- $generated := dict }}
{{- if not .Values.api.jwt.existingSecret }}
{{- $old := lookup "v1" "Secret" .Release.Namespace (include "mediaflow.jwtSecret" .) }}
{{- if and $old $old.data (hasKey $old.data "signingKey") }}
{{- $_ := set $generated "jwt" (dict "signingKey" (index $old.data "signingKey")) }}
{{- else }}
{{- $_ := set $generated "jwt" (dict "signingKey" (randAlphaNum 64 | b64enc)) }}
{{- end }}
{{- end }}
{{- if and (eq .Values.storage.mode "bundled") (not .Values.storage.bundled.existingSecret) }}
{{- $old := lookup "v1" "Secret" .Release.Namespace (include "mediaflow.minioName" .) }}
{{- if and $old $old.data (hasKey $old.data "accessKey") (hasKey $old.data "secretKey") }}
{{- $_ := set $generated "minio" (dict "accessKey" (index $old.data "accessKey") "secretKey" (index $old.data "secretKey")) }}
{{- else }}
{{- $_ := set $generated "minio" (dict "accessKey" (printf "mf%s" (randAlphaNum 16 | lower) | b64enc) "secretKey" (randAlphaNum 48 | b64enc)) }}
{{- end }}
{{- end }}
{{- $_ := set .Values "_mediaflowGeneratedSecrets" $generated }}
{{- end }}
{{- toJson (index .Values "_mediaflowGeneratedSecrets") }}
{{- end }}

{{/* What pods see of one Secret, as JSON {"name", "data"}: the data the chart generates for
it, else the live Secret's data when Helm can look it up (install/upgrade against a cluster;
none under `helm template`), else nothing but its name. (list $ "jwt"|"minio" name) */}}
{{- define "mediaflow.secretContent" -}}
{{- $root := index . 0 }}
{{- $name := index . 2 }}
{{- $generated := include "mediaflow.generatedSecrets" $root | fromJson }}
{{- $data := index $generated (index . 1) }}
{{- if not $data }}
{{- $live := lookup "v1" "Secret" $root.Release.Namespace $name }}
{{- $data = ($live).data | default dict }}
{{- end }}
{{- toJson (dict "name" $name "data" $data) }}
{{- end }}

{{/* Checksum of the Secrets the operator reads (the object-storage credentials). */}}
{{- define "mediaflow.operatorSecretsChecksum" -}}
{{- include "mediaflow.secretContent" (list . "minio" (include "mediaflow.storageSecret" .)) | sha256sum | trunc 16 }}
{{- end }}

{{/* Checksum of the Secrets the API reads (the JWT key and the storage credentials). */}}
{{- define "mediaflow.apiSecretsChecksum" -}}
{{- $jwt := include "mediaflow.secretContent" (list . "jwt" (include "mediaflow.jwtSecret" .)) }}
{{- $storage := include "mediaflow.secretContent" (list . "minio" (include "mediaflow.storageSecret" .)) }}
{{- printf "%s\n%s" $jwt $storage | sha256sum | trunc 16 }}
{{- end }}
