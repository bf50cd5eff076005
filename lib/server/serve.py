# The launcher every MLflow process of the stack runs under: `python -c <this> mlflow server ...`.
# It holds a shared PostgreSQL advisory lock (the writer fence) for exactly as long as the program
# runs. A `migrate` step with a pending schema migration asks for the same lock exclusively; each
# launcher sees that request, stops its program's whole process group and releases the lock, so the
# migration starts only when no MLflow of any version writes to the database. Without a pending
# migration nobody asks, and a rolling update keeps every pod serving. MySQL has no shared locks:
# there the program just runs (upgrades there are done with the server scaled to zero).
import os, signal, subprocess, sys, time
import sqlalchemy
from sqlalchemy.pool import NullPool

FENCE_KEY = 0x6D6C6663  # the same in every pod and in migrate.py
program = sys.argv[1:]
# A fenced server idles until the Deployment removes its pod; a fenced job fails.
idle_when_fenced = os.environ.get("MLFLOW_FENCE_IDLE") == "true"
engine = sqlalchemy.create_engine(os.environ["MLFLOW_BACKEND_STORE_URI"], poolclass=NullPool)
if engine.dialect.name != "postgresql":
    os.execvp(program[0], program)

fence = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
fence.execute(sqlalchemy.text("SELECT pg_advisory_lock_shared(:key)"), {"key": FENCE_KEY})
child = subprocess.Popen(program, start_new_session=True)
stop_signal = []


def forward(signum, _frame):
    stop_signal.append(signum)
    if child.poll() is not None:
        os._exit(0)
    try:
        os.killpg(child.pid, signum)
    except ProcessLookupError:
        pass


signal.signal(signal.SIGTERM, forward)
signal.signal(signal.SIGINT, forward)
migration_waiting = sqlalchemy.text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND mode = 'ExclusiveLock'"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = :key"
)
revision_sql = sqlalchemy.text("SELECT version_num FROM alembic_version")


def schema_revision(conn):
    try:
        return conn.execute(revision_sql).scalar()
    except sqlalchemy.exc.DBAPIError:
        return None


revision = schema_revision(fence)


def reconnect():
    """After a lost connection (a database restart): the share again, if the schema did not change meanwhile."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        try:
            conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            if conn.execute(sqlalchemy.text("SELECT pg_try_advisory_lock_shared(:key)"), {"key": FENCE_KEY}).scalar():
                if schema_revision(conn) == revision:
                    return conn
                return None
            conn.close()
            return None
        except sqlalchemy.exc.DBAPIError:
            time.sleep(2)
    return None


fenced = False
while child.poll() is None:
    try:
        waiting = fence.execute(migration_waiting, {"key": FENCE_KEY}).scalar()
    except sqlalchemy.exc.DBAPIError as error:
        print(f"fence: lost the database connection ({' '.join(str(error.orig).split())}); reconnecting", flush=True)
        fence = reconnect()
        if fence is None:
            # The share is gone and could not be taken back on an unchanged schema: a migration may run.
            print("fence: could not take the fence back on an unchanged schema; stopping", flush=True)
            os.killpg(child.pid, signal.SIGKILL)
            break
        continue
    if waiting:
        print("fence: a schema migration is waiting; stopping this MLflow so it can run", flush=True)
        os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
        fenced = True
        break
    time.sleep(1)
try:
    os.killpg(child.pid, signal.SIGKILL)
except ProcessLookupError:
    pass
child.wait()
if fence is not None:
    fence.close()
if fenced and not stop_signal:
    if idle_when_fenced:
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        while True:
            time.sleep(3600)
    sys.exit(1)
sys.exit(child.returncode if child.returncode and child.returncode > 0 else 0)
