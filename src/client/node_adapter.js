// goneaway's adapter for Node's `mysql` pool: adapter protocol 1.
//
// The harness decides when to check out, run and return; this script only does what it
// is told with a real mysql.createPool(), and reports the library's own errors, counts
// and settings. One JSON object per line on stdin and stdout; stderr is for humans.
// Usage: node node_adapter.js <directory holding the mysql module>
'use strict';

const path = require('path');
const readline = require('readline');

const PROTOCOL = 1;
const modules = process.argv[2] || '/usr/share/nodejs';
// Debian's modules require each other by bare name (mysql needs bignumber.js, ...): put
// their directory on the global module path, as Debian's own node does.
process.env.NODE_PATH = [modules, process.env.NODE_PATH].filter(Boolean).join(path.delimiter);
require('module').Module._initPaths();
const mysql = require(path.join(modules, 'mysql'));
const mysqlVersion = require(path.join(modules, 'mysql', 'package.json')).version;

function send(msg) {
  process.stdout.write(JSON.stringify(msg) + '\n');
}

// The error as the library raised it: its code (PROTOCOL_CONNECTION_LOST, ECONNREFUSED,
// ER_CON_COUNT_ERROR, ...) as the type, the MySQL number only where the server sent one.
function errorOf(err) {
  const mysqlNumber = typeof err.code === 'string' && err.code.startsWith('ER_') && err.errno > 0;
  return {
    code: mysqlNumber ? err.errno : null,
    type: err.code || (err.constructor && err.constructor.name) || 'Error',
    message: String(err.message),
  };
}

let pool = null;
let ignored = [];
// node-mysql has no pool-wide statement timeout, only each query's `timeout` option
// (ms, reset by every packet that arrives): `queryTimeout` is the adapter's own key for
// it, passed to every query, so the library never sees it as a pool option.
let queryTimeout = 0;
const conns = new Map();
let nextConn = 1;

function build(hello) {
  const config = Object.assign({}, hello.config || {});
  if ('queryTimeout' in config) {
    queryTimeout = config.queryTimeout;
    if (typeof queryTimeout !== 'number' || !Number.isInteger(queryTimeout) || queryTimeout < 0) {
      throw new TypeError(`queryTimeout must be a whole number of milliseconds (0: none), not ${JSON.stringify(queryTimeout)}`);
    }
    delete config.queryTimeout;
  }
  const options = Object.assign({}, config, {
    host: hello.host, port: hello.port, user: hello.user,
    password: hello.password, database: hello.database,
  });
  pool = mysql.createPool(options);
  // A key the library read is a property of the pool's config or of the connection
  // config it made; anything else it dropped without a word.
  ignored = Object.keys(config)
    .filter((k) => !(k in pool.config) && !(k in pool.config.connectionConfig))
    .sort();
}

function acquire(req, done) {
  pool.getConnection((err, conn) => {
    if (err) return done(err);
    const id = nextConn++;
    // inTx: a `begin` with no successful `commit` or `rollback` yet.
    conns.set(id, { conn, busy: null, inTx: false });
    done(null, { conn: id });
  });
}

function query(conn, sql, args) {
  return new Promise((resolve, reject) => {
    const options = { sql, values: args };
    // 0 (unset) passes no timeout: the library's own default, none.
    if (queryTimeout > 0) options.timeout = queryTimeout;
    conn.query(options, (err, rows) => (err ? reject(err) : resolve(rows)));
  });
}

// conn.beginTransaction, commit or rollback, as a promise, under the same queryTimeout
// as every other statement.
function call(conn, method) {
  return new Promise((resolve, reject) => {
    const options = queryTimeout > 0 ? { timeout: queryTimeout } : {};
    conn[method](options, (err) => (err ? reject(err) : resolve()));
  });
}

async function statement(held, s) {
  const conn = held.conn;
  // The harness names the table (a run's own on an external server); it is an
  // identifier the harness made, never user input.
  const table = s.table;
  switch (s.kind) {
    // A request of several steps in one transaction: begin, its statements, commit (or
    // rollback after a failed step), all on this connection.
    case 'begin':
      held.inTx = true; // before it is sent: a release from now on rolls back
      return call(conn, 'beginTransaction');
    case 'commit':
    case 'rollback':
      await call(conn, s.kind);
      held.inTx = false; // only once it worked: else the release rolls back or drops it
      return undefined;
    case 'ping':
      return query(conn, 'SELECT 1', []);
    case 'select':
      return query(conn, `SELECT id, worker FROM ${table} WHERE id = ?`, [s.id]);
    case 'insert':
      return query(conn, `INSERT INTO ${table} (id, worker) VALUES (?, ?)`, [s.id, s.worker]);
    case 'transaction':
      if (held.inTx) throw new Error('`transaction` inside a transaction already open');
      await query(conn, 'START TRANSACTION', []);
      try {
        await query(conn, `INSERT INTO ${table} (id, worker) VALUES (?, ?)`, [s.id, s.worker]);
        await query(conn, `SELECT COUNT(*) FROM ${table} WHERE id = ?`, [s.id]);
        return await query(conn, 'COMMIT', []);
      } catch (e) {
        query(conn, 'ROLLBACK', []).catch(() => {});
        throw e;
      }
    case 'sleep':
      return query(conn, 'SELECT SLEEP(?)', [s.seconds]);
    default:
      throw new Error(`unknown statement kind \`${s.kind}\``);
  }
}

function run(req, done) {
  const held = conns.get(req.conn);
  if (!held) return done(new Error(`no checked-out connection ${req.conn}`));
  held.busy = statement(held, req.statement).then(() => done(null, {}), (e) => done(e));
}

function release(req, done) {
  const held = conns.get(req.conn);
  if (!held) return done(new Error(`no checked-out connection ${req.conn}`));
  conns.delete(req.conn);
  // After a statement still running on it (the harness gave up waiting).
  Promise.resolve(held.busy).catch(() => {}).then(() => {
    if (!held.inTx) {
      held.conn.release(); // back to the pool
      return done(null, {});
    }
    // Returned inside a transaction (the harness gave up on the request): node's pool
    // hands a connection out again as it was returned, open transaction and all, so
    // roll back first, and destroy one that cannot (it leaves the pool).
    call(held.conn, 'rollback').then(
      () => held.conn.release(),
      () => held.conn.destroy(),
    ).then(() => done(null, {}));
  });
}

function stats() {
  const open = pool._allConnections.length;
  const idle = pool._freeConnections.length;
  return { open, idle, in_use: open - idle };
}

function settings() {
  const c = pool.config;
  return {
    vocabulary: 'node-mysql',
    settings: {
      connectionLimit: c.connectionLimit,
      acquireTimeout: c.acquireTimeout,
      waitForConnections: c.waitForConnections,
      queueLimit: c.queueLimit,
      connectTimeout: c.connectionConfig.connectTimeout,
      queryTimeout,
    },
    ignored,
  };
}

function reply(id, err, result) {
  if (err) send({ id, ok: false, error: errorOf(err) });
  else send(Object.assign({ id, ok: true }, result));
}

const ops = { acquire, run, release };
const lines = readline.createInterface({ input: process.stdin });
let hello = null;
lines.on('line', (line) => {
  if (!line.trim()) return;
  // Statement ids are 64-bit, past what a JavaScript number holds: keep them as decimal
  // strings, which the server reads back as the same BIGINT.
  const req = JSON.parse(line.replace(/"id":\s*(\d{16,})/g, '"id":"$1"'));
  if (hello === null) {
    hello = req;
    try {
      build(req);
    } catch (e) {
      console.error(e && e.stack);
      reply(req.id, e);
      process.exit(1);
    }
    return reply(req.id, null, { protocol: PROTOCOL, client: 'mysql', version: mysqlVersion,
      driver: `node ${process.versions.node}` });
  }
  if (req.op === 'stats') return reply(req.id, null, stats());
  if (req.op === 'settings') return reply(req.id, null, settings());
  if (req.op === 'close') {
    return pool.end(() => {
      reply(req.id, null, {});
      process.exit(0);
    });
  }
  const op = ops[req.op];
  if (!op) return reply(req.id, new Error(`unknown op \`${req.op}\``));
  try {
    op(req, (err, result) => reply(req.id, err, result));
  } catch (e) {
    reply(req.id, e);
  }
});
lines.on('close', () => process.exit(0));
// A fatal error on an idle pooled connection is handled by the pool; one the library
// throws past it must not end the adapter without a word.
process.on('uncaughtException', (e) => {
  console.error('uncaught:', e && e.stack);
  process.exit(1);
});
