import os, sys, time
import sqlalchemy
from sqlalchemy.pool import NullPool
from mlflow.store.db import utils

LOCK_KEY = 0x6D6C666C  # arbitrary, the same in every pod
LOCK_NAME = "mlflow-migrate"
wait_seconds = float(os.environ.get("MLFLOW_DB_WAIT_SECONDS", "300"))
engine = sqlalchemy.create_engine(os.environ["MLFLOW_BACKEND_STORE_URI"], poolclass=NullPool)
mysql = engine.dialect.name == "mysql"
server = "MySQL" if mysql else "PostgreSQL"
target = f"{engine.url.host}:{engine.url.port or (3306 if mysql else 5432)}/{engine.url.database}"
# Refusals that waiting cannot fix: wrong password, unknown database or role, no access rule.
FINAL = ("authentication failed", "does not exist", "no pg_hba.conf entry", "Access denied", "Unknown database")
deadline = time.monotonic() + wait_seconds
while True:
    try:
        lock = engine.connect()
        break
    except sqlalchemy.exc.OperationalError as error:
        reason = " ".join(str(error.orig).split())
        if any(final in reason for final in FINAL):
            print(f"migrate: {server} at {target} rejected the connection: {reason}", file=sys.stderr, flush=True)
            sys.exit(1)
        if time.monotonic() >= deadline:
            print(f"migrate: {server} at {target} not reachable after {wait_seconds:.0f}s: {reason}", file=sys.stderr, flush=True)
            sys.exit(1)
        print(f"migrate: waiting for {server} at {target}: {reason}", flush=True)
        time.sleep(2)
with lock:
    # One migrating pod at a time, across every pod: an advisory lock (PostgreSQL) or a named lock (MySQL).
    if mysql:
        while lock.execute(sqlalchemy.text("SELECT GET_LOCK(:name, 60)"), {"name": LOCK_NAME}).scalar() != 1:
            print("migrate: waiting for another pod's migration", flush=True)
    else:
        lock.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
    if not utils._all_tables_exist(engine):
        print("migrate: creating the MLflow schema", flush=True)
        utils._initialize_tables(engine)
    else:
        print("migrate: upgrading the MLflow schema if needed", flush=True)
        utils._upgrade_db(engine)
    utils._verify_schema(engine)
    if os.environ.get("MLFLOW_AUTH_CONFIG_PATH"):
        # Basic auth keeps its own tables (version table alembic_version_auth) in the same database.
        from mlflow.server.auth.db import utils as auth_utils
        print("migrate: creating or upgrading the auth schema if needed", flush=True)
        auth_utils.migrate_if_needed(engine, "head")
        # MLflow reads the admin password only to create the admin; the Secret stays the truth after a change.
        admin, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
        if admin and password:
            from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore as AuthStore
            auth_store = AuthStore()
            auth_store.init_db(os.environ["MLFLOW_BACKEND_STORE_URI"])
            if auth_store.has_user(admin) and not auth_store.authenticate_user(admin, password):
                auth_store.update_user(admin, password=password, is_admin=True)
                print(f"migrate: the password of admin user {admin} now matches the Secret", flush=True)
    if mysql:
        lock.execute(sqlalchemy.text("SELECT RELEASE_LOCK(:name)"), {"name": LOCK_NAME})
    else:
        lock.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
print(f"migrate: schema at {target} is current", flush=True)
