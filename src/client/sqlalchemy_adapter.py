"""goneaway's adapter for SQLAlchemy (and Flask-SQLAlchemy): adapter protocol 1.

The harness decides when to check out, run and return; this file only does what it is
told with a real engine, on a thread per request, and reports the client's own errors,
counts and settings. One JSON object per line on stdin and stdout; stderr is for humans.
"""

import importlib.metadata as metadata
import inspect
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


# How long the startup connection that reads them back may take (a server that is down
# or black-holed at start must not hold the handshake past the harness's 30 s).
PROBE_LIMIT = 10.0


def check_connect_args(driver, connect_args):
    """Both drivers raise TypeError for a keyword they do not know only at the first
    connect, deep in a run: ask them now, also in `goneaway check` (no server)."""
    if not connect_args:
        return
    if driver == "mysqlclient":
        # C code with no signature, but it parses every keyword before it connects: a
        # unix socket that does not exist makes that connect fail at once, off the network.
        import MySQLdb

        def refusal(args):
            try:
                MySQLdb.connect(host="localhost", unix_socket="/nonexistent/goneaway-check.sock", **args).close()
            except (TypeError, ValueError) as e:
                return e
            except MySQLdb.Error:
                pass  # the keywords were taken; only the (deliberately missing) socket failed
            return None

        e = refusal(connect_args)
        if e is not None:
            # Its message names an unknown key but not a value of the wrong type: one at a time.
            keys = [k for k in connect_args if refusal({k: connect_args[k]}) is not None]
            named = ", ".join(f"`{k}` = {connect_args[k]!r}" for k in keys) or "these"
            raise ValueError(f"connect_args {named} refused by mysqlclient {version('mysqlclient')}: {e}") from e
        return
    import pymysql

    params = inspect.signature(pymysql.connections.Connection.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(k for k in connect_args if k not in params)
    if unknown:
        raise ValueError(
            f"connect_args {', '.join(f'`{k}`' for k in unknown)}: PyMySQL {version('PyMySQL')}'s connect() has no such"
            f" argument (it would raise TypeError at the first connect); it takes {', '.join(p for p in params if p != 'self')}"
        )
    # Its __init__ checks the values (read_timeout > 0, …) before it would connect.
    for k, v in connect_args.items():
        try:
            pymysql.connections.Connection(defer_connect=True, **{k: v})
        except (TypeError, ValueError) as e:
            raise ValueError(f"connect_args `{k}` = {v!r} refused by PyMySQL {version('PyMySQL')}: {e}") from e


def mysqlclient_timeouts(dbapi_conn):
    """mysqlclient keeps its timeouts inside the C client's MYSQL struct and exposes no
    getter: ask the C library it is linked against, mysql_get_option(), through ctypes."""
    import ctypes

    import MySQLdb._mysql

    capsule = dbapi_conn._get_native_connection()
    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype = ctypes.c_char_p
    api.PyCapsule_GetName.argtypes = [ctypes.py_object]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    mysql = api.PyCapsule_GetPointer(capsule, api.PyCapsule_GetName(capsule))
    get = ctypes.CDLL(MySQLdb._mysql.__file__).mysql_get_option
    get.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    # enum mysql_option, the same in MariaDB Connector/C and libmysqlclient.
    out = {}
    for name, option in (("connect_timeout", 0), ("read_timeout", 11), ("write_timeout", 12)):
        value = ctypes.c_uint(0)
        if get(mysql, option, ctypes.byref(value)) != 0:
            raise RuntimeError(f"mysql_get_option({name}) failed")
        out[name] = value.value if value.value else "none"  # 0: no timeout
    return out


def driver_timeouts(driver, dbapi_conn):
    """The timeouts a live DBAPI connection really uses, from the driver's own fields."""
    if driver == "pymysql":
        fields = {"connect_timeout": "connect_timeout", "read_timeout": "_read_timeout",
                  "write_timeout": "_write_timeout"}
        return {k: (lambda v: "none" if v is None else v)(getattr(dbapi_conn, f)) for k, f in fields.items()}
    return mysqlclient_timeouts(dbapi_conn)


class Adapter:
    def __init__(self, hello):
        import sqlalchemy

        self.conns = {}
        self.open_tx = set()  # connections inside a `begin` the harness sent
        self.next_conn = 1
        self.lock = threading.Lock()
        self.ignored = []
        self.connect_args = {}
        self.connect_args_read = None  # the timeouts read back from a live connection
        self.connect_args_unread = None  # or why they could not be
        driver = hello.get("driver") or "pymysql"
        self.driver_name = driver
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
            # [client.config] connect_args: the DBAPI driver's own keywords, as an app
            # passes them (create_engine(..., connect_args={"read_timeout": 5})).
            self.connect_args = dict(config.get("connect_args") or {})
            check_connect_args(driver, self.connect_args)
            if self.connect_args:
                kwargs["connect_args"] = self.connect_args
            self.engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.QueuePool, **kwargs)
            if self.connect_args and hello.get("server", True):
                self.probe()
            elif self.connect_args:
                self.connect_args_unread = "no server to connect to (goneaway check)"
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

    def probe(self):
        """Read the driver's timeouts back from one real connection, taken from the pool at
        startup (and checked back in, so the pool starts with it idle): the report must
        say what the live connections use, not echo the suite. Only done when the suite
        passes connect_args, so every other suite connects lazily as before. A value the
        driver refuses at connect (TypeError, ValueError) ends the adapter here; a server
        that cannot be reached (a database down or black-holed at start) leaves them unread."""
        result = {}

        def take():
            try:
                with self.engine.connect() as conn:
                    try:
                        result["read"] = driver_timeouts(self.driver_name, conn.connection.dbapi_connection)
                    except Exception as e:  # noqa: BLE001 - a driver build without the getter
                        result["unread"] = f"{self.driver} did not let them be read: {type(e).__name__}: {e}"
            except BaseException as e:  # noqa: BLE001 - reported below
                result["error"] = e

        t = threading.Thread(target=take, daemon=True)
        t.start()
        t.join(PROBE_LIMIT)
        e = result.get("error")
        if isinstance(e, (TypeError, ValueError)):
            raise ValueError(f"connect_args refused by {self.driver} at connect: {e}") from e
        if "read" in result:
            self.connect_args_read = result["read"]
        elif "unread" in result:
            self.connect_args_unread = result["unread"]
        elif e is not None:
            self.connect_args_unread = "no connection at startup: " + error_of(e)["message"]
        else:
            self.connect_args_unread = f"no connection within {PROBE_LIMIT:g}s at startup"

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
        extra = {}
        if self.connect_args:
            extra["connect_args"] = {
                "read": self.connect_args_read,
                "unread": self.connect_args_unread,
                "passed": self.connect_args,
            }
        return {
            **extra,
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
