{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "imageserve.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-qualified name; component suffixes are appended to it. */}}
{{- define "imageserve.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "imageserve.gateway.fullname" -}}{{ include "imageserve.fullname" . }}-gateway{{- end -}}
{{- define "imageserve.triton.fullname" -}}{{ include "imageserve.fullname" . }}-triton{{- end -}}

{{- define "imageserve.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "imageserve.labels" -}}
helm.sh/chart: {{ include "imageserve.chart" . }}
app.kubernetes.io/name: {{ include "imageserve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: imageserve
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "gateway"). */}}
{{- define "imageserve.selectorLabels" -}}
app.kubernetes.io/name: {{ include "imageserve.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "imageserve.componentLabels" -}}
{{ include "imageserve.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "imageserve.gateway.image" -}}
{{- printf "%s:%s" .Values.gateway.image.repository (default .Chart.AppVersion .Values.gateway.image.tag) -}}
{{- end -}}

{{- define "imageserve.triton.image" -}}
{{- printf "%s:%s" .Values.triton.image.repository (default .Chart.AppVersion .Values.triton.image.tag) -}}
{{- end -}}

{{/* GATEWAY_SHUTDOWN_GRACE_S: terminationGracePeriodSeconds less the preStop sleep and 5 s to exit. */}}
{{- define "imageserve.gateway.shutdownGraceSeconds" -}}
{{- sub (int .Values.gateway.terminationGracePeriodSeconds) (add (int .Values.gateway.preStopSleepSeconds) 5) -}}
{{- end -}}

{{/* The most gateway replicas that may run at once: the HPA's maximum, or replicaCount. */}}
{{- define "imageserve.gateway.maxReplicas" -}}
{{- if .Values.gateway.autoscaling.enabled }}{{ int .Values.gateway.autoscaling.maxReplicas }}{{ else }}{{ int .Values.gateway.replicaCount }}{{ end -}}
{{- end -}}

{{- define "imageserve.gateway.secretName" -}}
{{- default (printf "%s-secrets" (include "imageserve.gateway.fullname" .)) .Values.gateway.secrets.existingSecret -}}
{{- end -}}

{{- define "imageserve.modelCache.claimName" -}}
{{- default (printf "%s-model-cache" (include "imageserve.fullname" .)) .Values.modelBuild.cache.existingClaim -}}
{{- end -}}

{{/* Pod-level security context: (dict "root" $ "uid" 1000 "gid" 1000). */}}
{{- define "imageserve.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .gid }}
fsGroup: {{ .gid }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: {{ .root.Values.podSecurity.seccompProfile }}
{{- end -}}

{{/* Container security context, the same for every container of the chart. */}}
{{- define "imageserve.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .gid }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
{{- end -}}

{{/*
Topology spread constraints; a constraint without labelSelector gets the component's selector
labels (and matchLabelKeys pod-template-hash): (dict "root" $ "component" "gateway" "constraints" list).
*/}}
{{- define "imageserve.topologySpread" -}}
{{- $selector := include "imageserve.selectorLabels" (dict "root" .root "component" .component) | fromYaml -}}
{{- $out := list -}}
{{- range .constraints -}}
{{- $c := deepCopy . -}}
{{- if not (hasKey $c "labelSelector") -}}
{{- $_ := set $c "labelSelector" (dict "matchLabels" $selector) -}}
{{- /* Spread each ReplicaSet on its own, so a rollout does not count the old pods. */ -}}
{{- if not (hasKey $c "matchLabelKeys") -}}
{{- $_ := set $c "matchLabelKeys" (list "pod-template-hash") -}}
{{- end -}}
{{- end -}}
{{- $out = append $out $c -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* PromQL label matchers selecting this release's scraped series. */}}
{{- define "imageserve.promql.gateway" -}}
namespace="{{ .Release.Namespace }}",job="{{ include "imageserve.gateway.fullname" . }}"
{{- end -}}
{{- define "imageserve.promql.triton" -}}
namespace="{{ .Release.Namespace }}",job="{{ include "imageserve.triton.fullname" . }}"
{{- end -}}

{{/* Runbook annotation of one alert: (dict "root" $ "alert" "Name"). */}}
{{- define "imageserve.runbook" -}}
{{- $anchor := lower .alert -}}
{{- with .root.Values.monitoring.prometheusRule.runbookBaseUrl -}}
runbook_url: {{ printf "%s#%s" . $anchor | quote }}
{{- else -}}
runbook: {{ printf "helm/README.md#%s in the imageserve repository" $anchor | quote }}
{{- end -}}
{{- end -}}

{{/* Egress rule to the cluster DNS (clusterDns peers), port 53 over UDP and TCP. */}}
{{- define "imageserve.dnsEgress" -}}
- to:
    {{- toYaml .Values.clusterDns | nindent 4 }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end -}}
