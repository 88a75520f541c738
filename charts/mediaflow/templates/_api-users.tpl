{{/* The namespace of the API's user Secrets: `api.users.namespace`, or `<release namespace>-users`. */}}
{{- define "mediaflow.usersNamespace" -}}
{{- $namespace := .Values.api.users.namespace | default (printf "%s-users" .Release.Namespace) }}
{{- if gt (len $namespace) 63 }}
{{- fail (printf "the users' namespace %q is longer than 63 characters: set api.users.namespace" $namespace) }}
{{- end }}
{{- $namespace }}
{{- end }}
