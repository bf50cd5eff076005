"""The Python twin of app.ts: the same stacks from the same inputs, through the cdk8s-mlflow wheel.

Usage: CDK8S_OUTDIR=dir python app.py <default|custom|production>
"""
import os
import sys

from cdk8s import App, Chart, Duration, Size
from cdk8s_plus_28 import Cpu
from cdk8s_mlflow import ArtifactStore, BackendStore, Credentials, MlflowStack, Permission

ENV_EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".env.example")
VALUES = dict(
    postgres_user="mlflow",
    postgres_password="p@ss:w/rd#%?&'\"q",
    postgres_db="mlflow",
    aws_access_key_id="minio-admin",
    aws_secret_access_key="S3cr3t+key/with=chars",
    artifact_root="s3://mlflow-artifacts/runs",
)


def default():
    return dict(credentials=Credentials.from_env_file(ENV_EXAMPLE))


def custom():
    return dict(
        credentials=Credentials.from_values(**VALUES),
        name="tracking",
        namespace="ml-platform",
        create_namespace=True,
        cluster_domain="corp.internal",
        server=dict(
            node_port=31555,
            replicas=3,
            workers=4,
            image="registry.example.com/mlflow:3.18.0-custom",
            allowed_hosts=["mlflow.example.com", "203.0.113.7:31555"],
            cors_allowed_origins=["https://notebooks.example.com"],
            resources=dict(
                cpu=dict(request=Cpu.millis(500), limit=Cpu.units(4)),
                memory=dict(request=Size.gibibytes(2), limit=Size.gibibytes(4)),
            ),
            database_wait_timeout=Duration.minutes(10),
        ),
        backend_store=BackendStore.postgres(storage=Size.gibibytes(50), storage_class_name="fast-ssd"),
        artifact_store=ArtifactStore.minio(storage=Size.gibibytes(200), storage_class_name="standard"),
        bucket_job=dict(wait_timeout=Duration.minutes(2)),
    )


def production():
    return dict(
        credentials=Credentials.from_values(**VALUES, admin_username="root", admin_password="admin-pass%word#12"),
        backend_store=BackendStore.external(host="db.example.com", port=6432, ssl_mode="require"),
        artifact_store=ArtifactStore.s3(endpoint="https://s3.example.com", ignore_tls=True),
        auth=dict(default_permission=Permission.NO_PERMISSIONS),
        ingress=dict(host="mlflow.example.com", tls_secret_name="mlflow-tls", class_name="nginx", max_body_size=Size.gibibytes(5)),
        metrics=dict(interval=Duration.seconds(15)),
        garbage_collection=dict(schedule="@daily", older_than=Duration.days(7)),
        backup=dict(schedule="15 1 * * 1-5", retention=Duration.days(30)),
        server=dict(autoscaling=dict(min_replicas=2, max_replicas=6)),
    )


CONFIGURATIONS = {"default": default, "custom": custom, "production": production}

if len(sys.argv) != 2 or sys.argv[1] not in CONFIGURATIONS:
    sys.exit(f"usage: app.py <{'|'.join(CONFIGURATIONS)}>")
app = App()
MlflowStack(Chart(app, "mlflow"), "mlflow", **CONFIGURATIONS[sys.argv[1]]())
app.synth()
