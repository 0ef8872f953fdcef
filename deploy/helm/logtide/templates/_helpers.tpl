{{/* Name of the chart, for labels. */}}
{{- define "logtide.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every object's name: the release name, with the chart's name unless the
release name already contains it. */}}
{{- define "logtide.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "logtide.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "logtide.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component ("agent" or "relay"): pass (list $ "agent"). */}}
{{- define "logtide.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "logtide.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "logtide.agentServiceAccount" -}}
{{- default (printf "%s-agent" (include "logtide.fullname" .)) .Values.agent.serviceAccount.name -}}
{{- end -}}

{{- define "logtide.relayServiceAccount" -}}
{{- default (printf "%s-relay" (include "logtide.fullname" .)) .Values.relay.serviceAccount.name -}}
{{- end -}}

{{- define "logtide.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* A binary's configuration file: the configuration from values with the `http`
section the probes and the Services rely on. Pass (list config port). */}}
{{- define "logtide.config" -}}
{{- $config := deepCopy (index . 0) -}}
{{- $_ := set $config "http" (dict "enabled" true "host" "0.0.0.0" "port" (index . 1)) -}}
{{- toYaml $config -}}
{{- end -}}
