{{/*
The settings file the worker reads through RK_CONFIG_FILE: snake_case keys exactly as in rueckkanal/settings.py
(unknown keys are an error there), built from the camelCase values, then config.extra merged over it.
Secrets are never in here: they are files in RK_SECRETS_DIR.
*/}}
{{- define "rueckkanal.settingsYaml" -}}
{{- $paths := include "rueckkanal.paths" . | fromYaml }}
{{- $kafka := dict "bootstrap" .Values.kafka.bootstrap "security_protocol" .Values.kafka.securityProtocol "max_request_size" (int .Values.kafka.maxRequestSize) }}
{{- if include "rueckkanal.kafkaSasl" . }}
{{- $_ := set $kafka "sasl_mechanism" .Values.kafka.sasl.mechanism }}
{{- $_ := set $kafka "sasl_username" .Values.kafka.sasl.username }}
{{- end }}
{{- if and (include "rueckkanal.kafkaTls" .) .Values.kafka.tls.existingSecret }}
{{- if .Values.kafka.tls.caKey }}
{{- $_ := set $kafka "ssl_cafile" (printf "%s/ca.crt" $paths.kafkaTls) }}
{{- end }}
{{- if .Values.kafka.tls.certKey }}
{{- $_ := set $kafka "ssl_certfile" (printf "%s/tls.crt" $paths.kafkaTls) }}
{{- $_ := set $kafka "ssl_keyfile" (printf "%s/tls.key" $paths.kafkaTls) }}
{{- end }}
{{- end }}
{{- $t := .Values.kafka.topics }}
{{- $topics := dict "events" $t.events "outbox" $t.outbox "dlq" $t.dlq "receipts" $t.receipts "partitions" (int $t.partitions) "replication_factor" (int $t.replicationFactor) }}
{{- $_ := set $topics "dlq_retention_ms" (int64 $t.dlqRetentionMs) }}
{{- $_ := set $topics "receipts_retention_ms" (int64 $t.receiptsRetentionMs) }}
{{- if not (kindIs "invalid" $t.minInsyncReplicas) }}
{{- $_ := set $topics "min_insync_replicas" (int $t.minInsyncReplicas) }}
{{- end }}
{{- $settings := dict
  "app_id" .Values.config.appId
  "kafka" $kafka
  "topics" $topics
  "web" (dict "port" (int .Values.web.port) "stall_after_s" .Values.web.stallAfterSeconds)
  "log" (dict "format" .Values.config.log.format "level" .Values.config.log.level)
  "ingest" (dict "lifecycle_policy" .Values.config.ingest.lifecyclePolicy)
  "delivery" (dict "drain_deadline_s" .Values.delivery.drainDeadlineSeconds)
  "data_dir" $paths.data
  "state" (dict "store" .Values.state.store "retention_days" .Values.state.retentionDays "standby_replicas" (int .Values.state.standbyReplicas))
}}
{{- with .Values.portal }}
{{- if .url }}
{{- $portal := dict "name" .name "url" .url "auth" .auth "receipt" .receipt "allow_insecure_http" .allowInsecureHttp }}
{{- if eq .auth "oauth2" }}
{{- $oauth2 := dict "token_url" .oauth2.tokenUrl "client_id" .oauth2.clientId }}
{{- if .oauth2.scope }}
{{- $_ := set $oauth2 "scope" .oauth2.scope }}
{{- end }}
{{- $_ := set $portal "oauth2" $oauth2 }}
{{- end }}
{{- if .tls.existingSecret }}
{{- $tls := dict }}
{{- if .tls.caKey }}
{{- $_ := set $tls "ca_bundle" (printf "%s/ca.crt" $paths.portalTls) }}
{{- end }}
{{- if eq .auth "mtls" }}
{{- $_ := set $tls "client_cert" (printf "%s/tls.crt" $paths.portalTls) }}
{{- $_ := set $tls "client_key" (printf "%s/tls.key" $paths.portalTls) }}
{{- end }}
{{- $_ := set $portal "tls" $tls }}
{{- end }}
{{- $_ := set $settings "portal" $portal }}
{{- end }}
{{- end }}
{{- with .Values.statusWeb }}
{{- if .enabled }}
{{- $sw := dict "port" (int .port) "internal_port" (int .internalPort) "base_url" .baseUrl "link_ttl_days" (int .linkTtlDays) "rate_limit_per_minute" (int .rateLimitPerMinute) "trusted_proxies" (int .trustedProxies) "tracking_topic" .trackingTopic "publish_tracking" .publishTracking "city" .city "estimate_min_count" (int .estimateMinCount) "accessibility_contact_email" .accessibilityContactEmail }}
{{- if .widerspruchFormUrl }}
{{- $_ := set $sw "widerspruch" (dict "form_url" .widerspruchFormUrl) }}
{{- end }}
{{- $_ := set $settings "status_web" $sw }}
{{- end }}
{{- end }}
{{- if .Values.targets }}
{{- $targets := dict }}
{{- range $name, $target := .Values.targets }}
{{- $one := deepCopy $target.settings }}
{{- if and $target.signing $target.signing.existingSecret }}
{{- $_ := set $one "signing_key" (printf "%s/%s/signing.key" $paths.targets $name) }}
{{- $_ := set $one "signing_cert" (printf "%s/%s/signing.crt" $paths.targets $name) }}
{{- end }}
{{- $_ := set $targets $name $one }}
{{- end }}
{{- $_ := set $settings "targets" $targets }}
{{- end }}
{{- $merged := mustMergeOverwrite $settings (deepCopy .Values.config.extra) }}
{{- toYaml $merged }}
{{- end }}

{{/*
Secret files for RK_SECRETS_DIR: a projected volume's sources, one file per secret setting, named the way
rueckkanal/settings.py reads nested secrets (rk_<section>__<field>).
*/}}
{{- define "rueckkanal.secretSources" -}}
{{- if include "rueckkanal.kafkaSasl" . }}
- secret:
    name: {{ default (include "rueckkanal.secretName" .) .Values.kafka.sasl.existingSecret }}
    items:
      - key: {{ ternary .Values.kafka.sasl.passwordKey "kafka-sasl-password" (not (empty .Values.kafka.sasl.existingSecret)) }}
        path: rk_kafka__sasl_password
{{- end }}
{{- if and .Values.portal.url (eq .Values.portal.auth "oauth2") }}
- secret:
    name: {{ default (include "rueckkanal.secretName" .) .Values.portal.oauth2.existingSecret }}
    items:
      - key: {{ ternary .Values.portal.oauth2.clientSecretKey "portal-oauth2-client-secret" (not (empty .Values.portal.oauth2.existingSecret)) }}
        path: rk_portal__oauth2__client_secret
{{- end }}
{{- end }}
