{{/* The operator pod, for the Deployment (or the StatefulSet when peered). */}}
{{- define "modelrollout.podTemplate" -}}
metadata:
  labels:
    {{- include "modelrollout.selectorLabels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  serviceAccountName: {{ include "modelrollout.serviceAccountName" . }}
  automountServiceAccountToken: true
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  containers:
    - name: operator
      image: {{ include "modelrollout.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command: ["modelrollout-operator"]
      args:
        - --liveness=http://0.0.0.0:{{ .Values.liveness.port }}/healthz
        - --metrics-port={{ .Values.metrics.port }}
        {{- range .Values.watchNamespaces }}
        - --namespace={{ . }}
        {{- else }}
        - --all-namespaces
        {{- end }}
        {{- if .Values.peering.enabled }}
        - --peering={{ .Values.peering.name }}
        # Equal priorities freeze every peer: each replica takes its StatefulSet ordinal.
        - --priority=$(POD_INDEX)
        {{- else }}
        - --standalone
        {{- end }}
        {{- if eq .Values.logLevel "quiet" }}
        - --quiet
        {{- else if eq .Values.logLevel "verbose" }}
        - --verbose
        {{- else if eq .Values.logLevel "debug" }}
        - --debug
        {{- end }}
        {{- if .Values.trafficRouting.gatewayAPI }}
        - --watch-routing=httproutes
        {{- end }}
        {{- if .Values.trafficRouting.istio }}
        - --watch-routing=virtualservices
        {{- end }}
        {{- if .Values.trafficRouting.nginx }}
        - --watch-routing=ingresses
        {{- end }}
        {{- range .Values.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      env:
        # Kopf's peer identity and the events' reporting instance: the pod name.
        - name: POD_ID
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        # The image of the model-server pods the operator creates.
        - name: MODELROLLOUT_SERVER_IMAGE
          value: {{ include "modelrollout.serverImage" . | quote }}
        {{- if .Values.peering.enabled }}
        - name: POD_INDEX
          valueFrom:
            fieldRef:
              fieldPath: metadata.labels['apps.kubernetes.io/pod-index']
        {{- end }}
        - name: POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        # Read-only root filesystem: no bytecode cache writes.
        - name: PYTHONDONTWRITEBYTECODE
          value: "1"
        - name: PYTHONUNBUFFERED
          value: "1"
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: healthz
          containerPort: {{ .Values.liveness.port }}
          protocol: TCP
        - name: metrics
          containerPort: {{ .Values.metrics.port }}
          protocol: TCP
      livenessProbe:
        httpGet:
          path: /healthz
          port: healthz
        periodSeconds: 20
        timeoutSeconds: 5
        failureThreshold: 3
      startupProbe:
        httpGet:
          path: /healthz
          port: healthz
        periodSeconds: 5
        failureThreshold: 24
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
  volumes:
    # The only writable path (read-only root filesystem).
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
