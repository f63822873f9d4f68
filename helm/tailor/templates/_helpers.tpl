{{/*
Labels on every object: the ones config/ sets, plus the ones Helm charts conventionally add.
The object names are fixed ("tailor", as in config/): the CRDs and ClusterRoles are cluster-wide,
so there is one Tailor per cluster, and the controller's Lease is named tailor-leader.
*/}}
{{- define "tailor.labels" -}}
app.kubernetes.io/name: tailor
app.kubernetes.io/part-of: tailor
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/*
What the Deployment selects its pods by, and the Services and ServiceMonitor select them by.
Immutable in a Deployment, so the same as config/manager.
*/}}
{{- define "tailor.selectorLabels" -}}
app.kubernetes.io/name: tailor
app.kubernetes.io/component: controller
{{- end }}
