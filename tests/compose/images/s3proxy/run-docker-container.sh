#!/usr/bin/env bash
# Start S3Proxy from the image's documented variables: each one that is set and not empty becomes
# the S3Proxy or jclouds property named beside it; S3PROXY_JAVA_OPTS goes to the JVM.
set -euo pipefail
properties=/tmp/s3proxy.properties
: > "$properties"
while read -r variable property; do
  value="${!variable:-}"
  if [ -n "$value" ]; then
    printf '%s=%s\n' "$property" "$value" >> "$properties"
  fi
done <<'TABLE'
S3PROXY_ENDPOINT s3proxy.endpoint
S3PROXY_SECURE_ENDPOINT s3proxy.secure-endpoint
S3PROXY_VIRTUALHOST s3proxy.virtual-host
S3PROXY_KEYSTORE_PATH s3proxy.keystore-path
S3PROXY_KEYSTORE_PASSWORD s3proxy.keystore-password
S3PROXY_AUTHORIZATION s3proxy.authorization
S3PROXY_IDENTITY s3proxy.identity
S3PROXY_CREDENTIAL s3proxy.credential
S3PROXY_CORS_ALLOW_ALL s3proxy.cors-allow-all
S3PROXY_CORS_ALLOW_ORIGINS s3proxy.cors-allow-origins
S3PROXY_CORS_ALLOW_METHODS s3proxy.cors-allow-methods
S3PROXY_CORS_ALLOW_HEADERS s3proxy.cors-allow-headers
S3PROXY_IGNORE_UNKNOWN_HEADERS s3proxy.ignore-unknown-headers
S3PROXY_READ_ONLY_BLOBSTORE s3proxy.read-only-blobstore
JCLOUDS_PROVIDER jclouds.provider
JCLOUDS_IDENTITY jclouds.identity
JCLOUDS_CREDENTIAL jclouds.credential
JCLOUDS_ENDPOINT jclouds.endpoint
JCLOUDS_REGION jclouds.region
JCLOUDS_FILESYSTEM_BASEDIR jclouds.filesystem.basedir
TABLE
mkdir -p "${JCLOUDS_FILESYSTEM_BASEDIR:-/data}"
# shellcheck disable=SC2086 # S3PROXY_JAVA_OPTS is a list of JVM options
exec java ${S3PROXY_JAVA_OPTS:-} -DLOG_LEVEL="${LOG_LEVEL:-info}" -jar /opt/s3proxy/s3proxy --properties "$properties"
