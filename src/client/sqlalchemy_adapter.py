"""goneaway's adapter for SQLAlchemy (and Flask-SQLAlchemy): adapter protocol 1.

The harness decides when to check out, run and return; this file only does what it is
told with a real engine, on a thread per request, and reports the client's own errors,
counts and settings. One JSON object per line on stdin and stdout; stderr is for humans.
"""

import importlib.metadata as metadata
import json
import sys
import threading
import traceback

PROTOCOL = 1

out_lock = threading.Lock()


def send(msg):
    line = json.dumps(msg)
    with out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def version(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def error_of(e):
    """The error as the client raised it: MySQL code where the driver has one."""
    orig = getattr(e, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's
    code = None
    source = orig if orig is not None else e
    args = getattr(source, "args", ())
    if args and isinstance(args[0], int):
        code = args[0]
    kind = type(e).__module__ + "." + type(e).__name__
    if orig is not None:
        kind += " (" + type(orig).__module__ + "." + type(orig).__name__ + ")"
    message = str(e).split("\n[SQL:")[0].strip()
    return {"code": code, "type": kind, "message": message}


def recording_config(base):
    """Flask's config with every key Flask-SQLAlchemy reads noted, so the keys it never
    looks at are reported as ignored instead of being dropped without a word."""

    class RecordingConfig(type(base)):
        def __getitem__(self, key):
            self.read.add(key)
            return super().__getitem__(key)

        def get(self, key, default=None):
            self.read.add(key)
            return super().get(key, default)

        def setdefault(self, key, default=None):
            self.read.add(key)
            return super().setdefault(key, default)

        def __contains__(self, key):
            self.read.add(key)
            return super().__contains__(key)

    config = RecordingConfig(base.root_path, base)
    config.read = set()
    return config


class Adapter:
    def __init__(self, hello):
        import sqlalchemy

        self.conns = {}
        self.open_tx = set()  # connections inside a `begin` the harness sent
        self.next_conn = 1
        self.lock = threading.Lock()
        self.ignored = []
        driver = hello.get("driver") or "pymysql"
        if driver not in ("pymysql", "mysqlclient"):
            raise ValueError(f"unknown driver `{driver}`: expected pymysql or mysqlclient")
        # URL.create escapes what a password may contain (an external server's).
        url = sqlalchemy.engine.URL.create(
            "mysql+mysqldb" if driver == "mysqlclient" else "mysql+pymysql",
            username=hello["user"], password=hello["password"],
            host=hello["host"], port=hello["port"], database=hello["database"],
        )
        self.driver = driver + " " + version("PyMySQL" if driver == "pymysql" else "mysqlclient")
        mode = hello.get("mode", "sqlalchemy")
        config = hello.get("config") or {}
        if mode == "sqlalchemy":
            self.client = "sqlalchemy"
            self.version = version("SQLAlchemy")
            kwargs = dict(hello.get("pool") or {})  # the suite's [pool], as keyword arguments
            self.engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.QueuePool, **kwargs)
        elif mode == "flask-sqlalchemy":
            from flask import Flask
            from flask_sqlalchemy import SQLAlchemy

            self.client = "flask-sqlalchemy"
            self.version = version("Flask-SQLAlchemy") + " (SQLAlchemy " + version("SQLAlchemy") + ")"
            app = Flask("goneaway")
            app.config = recording_config(app.config)
            before = set(app.config)
            app.config.update(config)
            app.config["SQLALCHEMY_DATABASE_URI"] = url
            app.config.read.clear()
            db = SQLAlchemy()
            db.init_app(app)
            with app.app_context():
                self.engine = db.engine
            self.ignored = sorted(k for k in config if k not in app.config.read and k not in before)
            self.app, self.db = app, db
        else:
            raise ValueError(f"unknown mode `{mode}`: expected sqlalchemy or flask-sqlalchemy")
        self.text = sqlalchemy.text

    def hello(self):
        return {"protocol": PROTOCOL, "client": self.client, "version": self.version, "driver": self.driver}

    def acquire(self, req):
        conn = self.engine.connect()  # a checkout from the QueuePool
        with self.lock:
            cid = self.next_conn
            self.next_conn += 1
            self.conns[cid] = (conn, threading.Lock())
        return {"conn": cid}

    def run(self, req):
        with self.lock:
            conn, lock = self.conns[req["conn"]]
        s = req["statement"]
        with lock:
            try:
                self.statement(conn, s, req["conn"])
            except Exception:
                self.open_tx.discard(req["conn"])
                if conn.in_transaction() and not conn.invalidated:
                    try:
                        conn.rollback()
                    except Exception:  # noqa: BLE001 - the first error is the one to report
                        pass
                raise
        return {}

    def statement(self, conn, s, cid):
        t = self.text
        kind = s["kind"]
        # A request of several steps in one transaction: begin, its statements, commit
        # (or rollback), all on this connection; nothing is committed in between.
        if kind == "begin":
            conn.begin()
            self.open_tx.add(cid)
            return
        if kind in ("commit", "rollback"):
            self.open_tx.discard(cid)
            (conn.commit if kind == "commit" else conn.rollback)()
            return
        # The harness names the table (a run's own on an external server); it is an
        # identifier the harness made, never user input.
        table = s.get("table", "goneaway_writes")
        if kind == "ping":
            conn.execute(t("SELECT 1")).fetchall()
        elif kind == "select":
            conn.execute(t(f"SELECT id, worker FROM {table} WHERE id = :id"), {"id": s["id"]}).fetchall()
        elif kind == "insert":
            conn.execute(t(f"INSERT INTO {table} (id, worker) VALUES (:id, :w)"), {"id": s["id"], "w": s["worker"]})
        elif kind == "transaction":
            with conn.begin():
                conn.execute(t(f"INSERT INTO {table} (id, worker) VALUES (:id, :w)"), {"id": s["id"], "w": s["worker"]})
                conn.execute(t(f"SELECT COUNT(*) FROM {table} WHERE id = :id"), {"id": s["id"]}).fetchall()
        elif kind == "sleep":
            conn.execute(t("SELECT SLEEP(:s)"), {"s": s["seconds"]}).fetchall()
        else:
            raise ValueError(f"unknown statement kind `{kind}`")
        if conn.in_transaction() and cid not in self.open_tx:
            conn.commit()  # autocommit as the Rust clients do: an insert is acknowledged once committed

    def release(self, req):
        with self.lock:
            conn, lock = self.conns.pop(req["conn"])
            self.open_tx.discard(req["conn"])
        with lock:  # after a statement still running on it (the harness gave up waiting)
            conn.close()  # back to the pool
        return {}

    def stats(self, req):
        pool = self.engine.pool
        idle = pool.checkedin()
        in_use = pool.checkedout()
        return {"open": idle + in_use, "idle": idle, "in_use": in_use}

    def settings(self, req):
        pool = self.engine.pool
        recycle = pool._recycle
        return {
            "vocabulary": "sqlalchemy",
            "settings": {
                "pool_size": pool.size(),
                "max_overflow": pool._max_overflow,
                "pool_timeout": pool._timeout,
                "pool_recycle": recycle if recycle is not None and recycle >= 0 else -1,
                "pool_pre_ping": bool(pool._pre_ping),
            },
            "ignored": self.ignored,
        }

    def close(self, req):
        self.engine.dispose()
        return {}


def serve(adapter, req):
    try:
        result = getattr(adapter, req["op"])(req)
        send({"id": req["id"], "ok": True, **result})
    except Exception as e:  # noqa: BLE001 - every client error crosses the pipe
        send({"id": req["id"], "ok": False, "error": error_of(e)})


def main():
    first = sys.stdin.readline()
    if not first:
        return
    hello = json.loads(first)
    try:
        adapter = Adapter(hello)
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        send({"id": hello.get("id", 0), "ok": False, "error": error_of(e)})
        return
    send({"id": hello["id"], "ok": True, **adapter.hello()})
    ops = {"acquire", "run", "release", "stats", "settings"}
    for line in sys.stdin:
        req = json.loads(line)
        op = req.get("op")
        if op == "close":
            serve(adapter, req)
            return
        if op in ("stats", "settings"):
            serve(adapter, req)  # answered at once: the harness's liveness check
        elif op in ops:
            threading.Thread(target=serve, args=(adapter, req), daemon=True).start()
        else:
            send({"id": req.get("id"), "ok": False, "error": {"code": None, "type": "protocol", "message": f"unknown op `{op}`"}})


if __name__ == "__main__":
    main()
