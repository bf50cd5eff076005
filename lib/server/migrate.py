import os, sys, time
import sqlalchemy
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool
from mlflow.store.db import utils

MIGRATE_KEY = 0x6D6C666C  # serializes the migrate steps of all pods
FENCE_KEY = 0x6D6C6663  # held shared by every running MLflow (serve.py), exclusively by a migration
LOCK_NAME = "mlflow-migrate"
wait_seconds = float(os.environ.get("MLFLOW_DB_WAIT_SECONDS", "300"))
fence_seconds = float(os.environ.get("MLFLOW_FENCE_WAIT_SECONDS", "300"))
engine = sqlalchemy.create_engine(os.environ["MLFLOW_BACKEND_STORE_URI"], poolclass=NullPool)
mysql = engine.dialect.name == "mysql"
server = "MySQL" if mysql else "PostgreSQL"
target = f"{engine.url.host}:{engine.url.port or (3306 if mysql else 5432)}/{engine.url.database}"
auth = bool(os.environ.get("MLFLOW_AUTH_CONFIG_PATH"))
# Refusals that waiting cannot fix: wrong password, unknown database or role, no access rule.
FINAL = ("authentication failed", "does not exist", "no pg_hba.conf entry", "Access denied", "Unknown database")


def log(message, error=False):
    print(f"migrate: {message}", file=sys.stderr if error else sys.stdout, flush=True)


def auth_revisions():
    from mlflow.server.auth.db import utils as auth_utils
    head = ScriptDirectory.from_config(auth_utils._get_alembic_config(engine.url.render_as_string(hide_password=False))).get_current_head()
    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": "alembic_version_auth"}).get_current_revision(), head


def known_to_this_image(revision):
    try:
        return ScriptDirectory.from_config(utils._get_alembic_config("")).get_revision(revision) is not None
    except Exception:
        return False


deadline = time.monotonic() + wait_seconds
while True:
    try:
        lock = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        break
    except sqlalchemy.exc.OperationalError as error:
        reason = " ".join(str(error.orig).split())
        if any(final in reason for final in FINAL):
            log(f"{server} at {target} rejected the connection: {reason}", error=True)
            sys.exit(1)
        if time.monotonic() >= deadline:
            log(f"{server} at {target} not reachable after {wait_seconds:.0f}s: {reason}", error=True)
            sys.exit(1)
        log(f"waiting for {server} at {target}: {reason}")
        time.sleep(2)
with lock:
    # One migrate step at a time, across every pod: an advisory lock (PostgreSQL) or a named lock (MySQL).
    if mysql:
        while lock.execute(sqlalchemy.text("SELECT GET_LOCK(:name, 60)"), {"name": LOCK_NAME}).scalar() != 1:
            log("waiting for another pod's migration")
    else:
        lock.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATE_KEY})
    # Not _all_tables_exist(): it compares with this image's tables, so it is false on every upgrade that adds one.
    fresh = utils._is_empty_database(engine)
    current, head = (None if fresh else utils._get_schema_version(engine)), utils._get_latest_schema_revision()
    pending = [f"tracking {current} -> {head}"] if current != head else []
    if auth:
        auth_current, auth_head = auth_revisions()
        if auth_current != auth_head:
            pending.append(f"auth {auth_current} -> {auth_head}")
    if current is not None and current != head and not known_to_this_image(current):
        # A newer MLflow wrote this schema (a rollback): never stop the newer servers; fail this pod instead.
        log(f"the database is at revision {current}, which this image's MLflow does not know (a newer MLflow migrated it); "
            "refusing to start: go back by restoring a backup taken before the upgrade", error=True)
        sys.exit(1)
    if not pending:
        log("the schema is current: no migration, every server keeps running")
    elif fresh:
        log("creating the MLflow schema")
        utils._initialize_tables(engine)
    else:
        log(f"schema migration pending ({'; '.join(pending)})")
        if not mysql:
            log(f"stopping every running MLflow first (writer fence, up to {fence_seconds:.0f}s)")
            started = time.monotonic()
            lock.execute(sqlalchemy.text(f"SET lock_timeout = '{int(fence_seconds * 1000)}ms'"))
            try:
                lock.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": FENCE_KEY})
            except sqlalchemy.exc.OperationalError as error:
                log(f"running servers did not stop within {fence_seconds:.0f}s; not migrating: {' '.join(str(error.orig).split())}", error=True)
                sys.exit(1)
            lock.execute(sqlalchemy.text("SET lock_timeout = 0"))
            log(f"no MLflow is running (fence held after {time.monotonic() - started:.1f}s); migrating")
        utils._upgrade_db(engine)
    utils._verify_schema(engine)
    if auth:
        # Basic auth keeps its own tables (version table alembic_version_auth) in the same database.
        from mlflow.server.auth.db import utils as auth_utils
        log("creating or upgrading the auth schema if needed")
        if mysql:
            # MLflow's first auth migration names two foreign keys fk_user_id; MySQL wants them unique
            # per database (mlflow/mlflow#9642). The second gets a name of its own.
            from alembic.operations import Operations
            create_table = Operations.create_table

            def unique_fk_names(self, name, *columns, **kw):
                for c in columns:
                    if isinstance(c, sqlalchemy.ForeignKeyConstraint) and c.name == "fk_user_id" and name != "experiment_permissions":
                        c.name = f"fk_{name}_user_id"
                return create_table(self, name, *columns, **kw)

            Operations.create_table = unique_fk_names
        auth_utils.migrate_if_needed(engine, "head")
        # MLflow reads the admin password only to create the admin; the Secret stays the truth after a change.
        admin, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
        if admin and password:
            from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore as AuthStore
            auth_store = AuthStore()
            auth_store.init_db(os.environ["MLFLOW_BACKEND_STORE_URI"])
            if auth_store.has_user(admin) and not auth_store.authenticate_user(admin, password):
                auth_store.update_user(admin, password=password, is_admin=True)
                log(f"the password of admin user {admin} now matches the Secret")
    if mysql:
        lock.execute(sqlalchemy.text("SELECT RELEASE_LOCK(:name)"), {"name": LOCK_NAME})
    # Closing the connection releases the advisory locks, the fence included.
log(f"schema at {target} is current")
