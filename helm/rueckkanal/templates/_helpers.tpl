{{/*
Expand the name of the chart.
*/}}
{{- define "rueckkanal.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name. Truncated at 63 characters (DNS names); if the release name already
contains the chart name, it is used as the full name.
*/}}
{{- define "rueckkanal.fullname" -}}
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

{{/*
Create chart name and version as used by the chart label.
*/}}
{{- define "rueckkanal.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels
*/}}
{{- define "rueckkanal.labels" -}}
helm.sh/chart: {{ include "rueckkanal.chart" . }}
{{ include "rueckkanal.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rueckkanal
{{- end }}

{{/*
Selector labels
*/}}
{{- define "rueckkanal.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rueckkanal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Create the name of the service account to use
*/}}
{{- define "rueckkanal.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rueckkanal.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference.
*/}}
{{- define "rueckkanal.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
Name of the Secret the chart creates for plain-text secret values (development only).
*/}}
{{- define "rueckkanal.secretName" -}}
{{- printf "%s-secrets" (include "rueckkanal.fullname" .) }}
{{- end }}

{{/*
Whether the chart creates its own Secret.
*/}}
{{- define "rueckkanal.createSecret" -}}
{{- if or (and (not .Values.kafka.sasl.existingSecret) .Values.kafka.sasl.password) (and (not .Values.portal.oauth2.existingSecret) .Values.portal.oauth2.clientSecret) }}true{{- end }}
{{- end }}

{{/*
Whether the Kafka connection uses SASL / TLS.
*/}}
{{- define "rueckkanal.kafkaSasl" -}}
{{- if has .Values.kafka.securityProtocol (list "SASL_PLAINTEXT" "SASL_SSL") }}true{{- end }}
{{- end }}
{{- define "rueckkanal.kafkaTls" -}}
{{- if has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL") }}true{{- end }}
{{- end }}

{{/*
terminationGracePeriodSeconds: the delivery drain deadline plus a margin to leave the group and flush.
*/}}
{{- define "rueckkanal.terminationGracePeriodSeconds" -}}
{{- add (int (ceil .Values.delivery.drainDeadlineSeconds)) (int .Values.terminationGraceMarginSeconds) }}
{{- end }}

{{/*
Paths inside the container.
*/}}
{{- define "rueckkanal.paths" -}}
config: /etc/rueckkanal/config
fachverfahren: /etc/rueckkanal/fachverfahren
secrets: /etc/rueckkanal/secrets
kafkaTls: /etc/rueckkanal/tls/kafka
portalTls: /etc/rueckkanal/tls/portal
targets: /etc/rueckkanal/targets
data: /var/lib/rueckkanal
{{- end }}

{{/*
Checks that fail rendering with a message instead of producing a broken release.
*/}}
{{- define "rueckkanal.validate" -}}
{{- if gt (int .Values.replicaCount) (int .Values.kafka.topics.partitions) }}
{{- fail (printf "replicaCount (%d) must not exceed kafka.topics.partitions (%d): a worker without partitions has nothing to do and is never ready" (int .Values.replicaCount) (int .Values.kafka.topics.partitions)) }}
{{- end }}
{{- if and (include "rueckkanal.kafkaSasl" .) (not .Values.kafka.sasl.username) }}
{{- fail (printf "kafka.securityProtocol %s needs kafka.sasl.username" .Values.kafka.securityProtocol) }}
{{- end }}
{{- if and (include "rueckkanal.kafkaSasl" .) (not .Values.kafka.sasl.existingSecret) (not .Values.kafka.sasl.password) }}
{{- fail "SASL needs kafka.sasl.existingSecret (or, for development, kafka.sasl.password)" }}
{{- end }}
{{- if and (or .Values.kafka.tls.certKey .Values.kafka.tls.keyKey) (not .Values.kafka.tls.existingSecret) }}
{{- fail "kafka.tls.certKey/keyKey need kafka.tls.existingSecret" }}
{{- end }}
{{- if and .Values.portal.url (eq .Values.portal.auth "oauth2") (or (not .Values.portal.oauth2.tokenUrl) (not .Values.portal.oauth2.clientId)) }}
{{- fail "portal.auth=oauth2 needs portal.oauth2.tokenUrl and portal.oauth2.clientId" }}
{{- end }}
{{- if and .Values.portal.url (eq .Values.portal.auth "oauth2") (not .Values.portal.oauth2.existingSecret) (not .Values.portal.oauth2.clientSecret) }}
{{- fail "portal.auth=oauth2 needs portal.oauth2.existingSecret (or, for development, portal.oauth2.clientSecret)" }}
{{- end }}
{{- if and .Values.portal.url (eq .Values.portal.auth "mtls") (not .Values.portal.tls.existingSecret) }}
{{- fail "portal.auth=mtls needs portal.tls.existingSecret with the client certificate and key" }}
{{- end }}
{{- if and .Values.topicsJob.enabled (include "rueckkanal.kafkaSasl" .) (not .Values.kafka.sasl.existingSecret) }}
{{- fail "topicsJob runs before the chart's own Secret exists (pre-install hook): it needs kafka.sasl.existingSecret" }}
{{- end }}
{{- end }}

{{/*
status-web's labels: its own name, so that the worker's selector never matches its pods.
*/}}
{{- define "rueckkanal.statusWebSelectorLabels" -}}
app.kubernetes.io/name: {{ include "rueckkanal.name" . }}-status-web
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "rueckkanal.statusWebLabels" -}}
helm.sh/chart: {{ include "rueckkanal.chart" . }}
{{ include "rueckkanal.statusWebSelectorLabels" . }}
app.kubernetes.io/component: status-web
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
