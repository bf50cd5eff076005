/**
 * Shell programs run in the `mc` image (whose entrypoint is `mc`, so they start as `/bin/sh -c`)
 * and the database images (lib/stores/*-dump.ts). They read everything from the environment, so no credential is in a
 * manifest. None may contain `$$` or `$(NAME)`: the kubelet would rewrite them.
 */

/** Sets `bucket` and `root_prefix` from MLFLOW_S3_ARTIFACT_ROOT, `endpoint` and `insecure` from the other S3 settings. */
const S3_PRELUDE = `
set -eu
root="$MLFLOW_S3_ARTIFACT_ROOT"
case "$root" in
  s3://?*) ;;
  *) echo "MLFLOW_S3_ARTIFACT_ROOT must look like s3://<bucket>/<prefix>, got '$root'" >&2; exit 1 ;;
esac
path="\${root#s3://}"
bucket="\${path%%/*}"
root_prefix="\${path#"$bucket"}"
root_prefix="\${root_prefix#/}"
root_prefix="\${root_prefix%/}"
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

/** Where the dump streams from the dump container to the upload container, and how the dump ended. */
export const BACKUP_PIPE = '/backup/dump.fifo';
export const BACKUP_STATUS = '/backup/dump.status';

/**
 * The backup upload: refuses a location inside the served artifact root (clients could download the
 * dump through the tracking server), streams the pipe to
 * s3://<BACKUP_BUCKET or the artifact bucket>/<BACKUP_PREFIX>/<BACKUP_NAME>-<UTC time>.dump under a
 * temporary name, keeps it only when the dump succeeded, then removes backups older than
 * BACKUP_RETENTION_DAYS.
 */
export const BACKUP_UPLOAD_SCRIPT = `${S3_PRELUDE}
target_bucket="\${BACKUP_BUCKET:-$bucket}"
drain() { cat ${BACKUP_PIPE} > /dev/null 2>&1 || true; }
i=0
until [ -p ${BACKUP_PIPE} ]; do
  i=$(( i + 1 ))
  if [ "$i" -gt 300 ]; then echo "backup: the dump never started" >&2; exit 1; fi
  sleep 1
done
if [ "$target_bucket" = "$bucket" ]; then
  case "$BACKUP_PREFIX/" in
    "$root_prefix"/*) inside=yes ;;
    *) inside=no ;;
  esac
  if [ -z "$root_prefix" ] || [ "$inside" = yes ]; then
    echo "backup: refusing s3://$target_bucket/$BACKUP_PREFIX/: it is inside the artifact root $root, which the tracking server serves to every client; set backup.bucket or backup.prefix outside it" >&2
    drain
    exit 1
  fi
fi
mc $insecure alias set target "$endpoint" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" > /dev/null
mc $insecure mb --ignore-existing --region "\${AWS_DEFAULT_REGION:-us-east-1}" "target/$target_bucket" > /dev/null
key="$BACKUP_PREFIX/$BACKUP_NAME-$(date -u +%Y%m%dT%H%M%SZ).dump"
mc $insecure pipe "target/$target_bucket/$key.partial" < ${BACKUP_PIPE}
i=0
until [ -s ${BACKUP_STATUS} ]; do
  i=$(( i + 1 ))
  if [ "$i" -gt 60 ]; then echo "backup: the dump did not report how it ended" >&2; exit 1; fi
  sleep 1
done
if [ "$(cat ${BACKUP_STATUS})" != ok ]; then
  mc $insecure rm "target/$target_bucket/$key.partial" > /dev/null
  echo "backup: pg_dump failed; nothing kept" >&2
  exit 1
fi
mc $insecure mv "target/$target_bucket/$key.partial" "target/$target_bucket/$key" > /dev/null
echo "backup: wrote s3://$target_bucket/$key"
mc $insecure rm --recursive --force --older-than "\${BACKUP_RETENTION_DAYS}d" "target/$target_bucket/$BACKUP_PREFIX/"
echo "backup: removed backups older than \${BACKUP_RETENTION_DAYS} days"
`.trimStart();
