{{/* <release>-operator: with release "meson" every name equals deploy/rbac and deploy/webhook. */}}
{{- define "meson.fullname" -}}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "meson.serviceAccountName" -}}
{{- default (include "meson.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "meson.webhookService" -}}
{{- printf "%s-webhook" (include "meson.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "meson.labels" -}}
app.kubernetes.io/name: meson-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "meson.selectorLabels" -}}
app.kubernetes.io/name: meson-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
