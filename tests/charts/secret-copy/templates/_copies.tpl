{{- /* Every copied value as "group.key: value" lines, in a stable order. */ -}}
{{- define "secret-copy.copies" -}}
password: {{ .Values.auth.password | quote }}
greeting: {{ .Values.app.greeting | quote }}
{{- range $key, $value := .Values.creds }}
creds.{{ $key }}: {{ $value | toString | quote }}
{{- end }}
{{- range $key, $value := .Values.fromFile }}
fromFile.{{ $key }}: {{ $value | toString | quote }}
{{- end }}
{{- end -}}
