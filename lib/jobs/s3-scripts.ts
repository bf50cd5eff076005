/**
 * Shell programs run in the `mc` image (whose entrypoint is `mc`, so they start as `/bin/sh -c`).
 * They read everything from the environment, so no credential is in a manifest. None may contain
 * `$$` or `$(NAME)`: the kubelet would rewrite them.
 */

/** Sets `bucket` from MLFLOW_S3_ARTIFACT_ROOT, `endpoint` and `insecure` from the other S3 settings. */
const S3_PRELUDE = `
set -eu
root="$MLFLOW_S3_ARTIFACT_ROOT"
case "$root" in
  s3://?*) ;;
  *) echo "MLFLOW_S3_ARTIFACT_ROOT must look like s3://<bucket>/<prefix>, got '$root'" >&2; exit 1 ;;
esac
path="\${root#s3://}"
bucket="\${path%%/*}"
endpoint="\${MLFLOW_S3_ENDPOINT_URL:-https://s3.amazonaws.com}"
insecure=""
if [ "\${MLFLOW_S3_IGNORE_TLS:-false}" = "true" ]; then insecure="--insecure"; fi
`;

/**
 * The bucket Job: waits (bounded by BUCKET_WAIT_SECONDS) for the endpoint to accept the
 * credentials, then makes the bucket exist. `mc mb --ignore-existing` makes a re-run change nothing.
 */
export const BUCKET_SCRIPT = `${S3_PRELUDE}
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

/**
 * The backup upload: copies /backup/mlflow.dump to s3://<bucket>/<BACKUP_PREFIX>/mlflow-<UTC time>.dump,
 * then removes backups older than BACKUP_RETENTION_DAYS.
 */
export const BACKUP_UPLOAD_SCRIPT = `${S3_PRELUDE}
mc $insecure alias set target "$endpoint" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" > /dev/null
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
mc $insecure cp /backup/mlflow.dump "target/$bucket/$BACKUP_PREFIX/mlflow-$stamp.dump"
echo "backup: wrote s3://$bucket/$BACKUP_PREFIX/mlflow-$stamp.dump"
mc $insecure rm --recursive --force --older-than "\${BACKUP_RETENTION_DAYS}d" "target/$bucket/$BACKUP_PREFIX/"
echo "backup: removed backups older than \${BACKUP_RETENTION_DAYS} days"
`.trimStart();

/** The backup dump, run in the PostgreSQL image with PG* variables set. */
export const BACKUP_DUMP_SCRIPT = `
set -eu
pg_dump --format=custom --file=/backup/mlflow.dump
echo "backup: dumped $(wc -c < /backup/mlflow.dump) bytes of database $PGDATABASE"
`.trimStart();
