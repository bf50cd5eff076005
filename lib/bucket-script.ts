/**
 * The shell program the bucket Job runs in the `mc` image (whose entrypoint is `mc`, so it is
 * started as `/bin/sh -c`). It reads everything from the environment, so no credential is in
 * the manifest: it waits (bounded) for the S3 endpoint, then makes the bucket of
 * MLFLOW_S3_ARTIFACT_ROOT exist. `mc mb --ignore-existing` makes a re-run change nothing.
 */
export const BUCKET_SCRIPT = `
set -eu
root="$MLFLOW_S3_ARTIFACT_ROOT"
case "$root" in
  s3://?*) ;;
  *) echo "bucket: MLFLOW_S3_ARTIFACT_ROOT must look like s3://<bucket>/<prefix>, got '$root'" >&2; exit 1 ;;
esac
path="\${root#s3://}"
bucket="\${path%%/*}"
endpoint="\${MLFLOW_S3_ENDPOINT_URL:-https://s3.amazonaws.com}"
insecure=""
if [ "\${MLFLOW_S3_IGNORE_TLS:-false}" = "true" ]; then insecure="--insecure"; fi
attempts=$(( BUCKET_WAIT_SECONDS / 5 + 1 ))
i=1
until mc $insecure alias set target "$endpoint" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" > /tmp/alias.log 2>&1; do
  if [ "$i" -ge "$attempts" ]; then
    echo "bucket: S3 endpoint $endpoint did not accept the credentials within \${BUCKET_WAIT_SECONDS}s:" >&2
    cat /tmp/alias.log >&2
    exit 1
  fi
  echo "bucket: waiting for S3 endpoint $endpoint ($i/$attempts)"
  i=$(( i + 1 ))
  sleep 5
done
mc $insecure mb --ignore-existing --region "\${AWS_DEFAULT_REGION:-us-east-1}" "target/$bucket"
echo "bucket: s3://$bucket is ready"
`.trimStart();
