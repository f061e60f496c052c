// goneaway's adapter for Go's database/sql with go-sql-driver/mysql: adapter protocol 1.
//
// The harness decides when to check out, run and return; this program only does what it
// is told with a real *sql.DB, a goroutine per request, and reports the library's own
// errors, counts and settings. One JSON object per line on stdin and stdout; stderr is
// for humans (the driver logs "unexpected EOF" and the like there).
package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

const protocol = 1

// Set at build time from the Debian package's version.
var driverVersion = "unknown"

var out = bufio.NewWriter(os.Stdout)
var outMu sync.Mutex

func send(msg map[string]interface{}) {
	line, err := json.Marshal(msg)
	if err != nil {
		line, _ = json.Marshal(map[string]interface{}{"id": msg["id"], "ok": false,
			"error": map[string]interface{}{"type": "protocol", "message": err.Error()}})
	}
	outMu.Lock()
	defer outMu.Unlock()
	out.Write(line)
	out.WriteByte('\n')
	out.Flush()
}

// errorOf is the error as the library returned it: the MySQL number where the server
// sent one, the Go type and its text. `where` names the call that failed, so a context
// deadline on db.Conn reads as a checkout that timed out.
func errorOf(where string, err error) map[string]interface{} {
	var code interface{}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		code = me.Number
	}
	return map[string]interface{}{"code": code, "type": where + ": " + fmt.Sprintf("%T", err), "message": err.Error()}
}

// The words of database/sql itself (methods on *sql.DB); every other key is a DSN
// parameter, read by the driver's own DSN parser.
var dbWords = map[string]bool{"max_open_conns": true, "max_idle_conns": true,
	"conn_max_lifetime": true, "conn_max_idle_time": true, "checkout_context_timeout": true}

type held struct {
	mu   sync.Mutex
	conn *sql.Conn
	// The transaction a `begin` opened, until its `commit` or `rollback`. A Go
	// application holding a *sql.Conn opens one with BeginTx, so the adapter does too
	// (not START TRANSACTION through ExecContext): database/sql then knows the
	// transaction, and every statement in between must run on the Tx, never on the
	// Conn, which the Tx holds until it ends.
	tx *sql.Tx
}

type adapter struct {
	db       *sql.DB
	cfg      *mysql.Config
	checkout time.Duration // 0: db.Conn waits as long as its context lives
	ignored  []string
	mu       sync.Mutex
	conns    map[uint64]*held
	next     uint64
}

func duration(key string, v interface{}) (time.Duration, error) {
	switch x := v.(type) {
	case string:
		d, err := time.ParseDuration(x)
		if err != nil {
			return 0, fmt.Errorf("%s: %v", key, err)
		}
		return d, nil
	case json.Number:
		if x.String() == "0" {
			return 0, nil
		}
	}
	return 0, fmt.Errorf("%s: expected a Go duration string like \"30s\" or \"1m30s\" (0 for none), got %v", key, v)
}

func integer(key string, v interface{}) (int, error) {
	if n, ok := v.(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			return int(i), nil
		}
	}
	return 0, fmt.Errorf("%s: expected an integer, got %v", key, v)
}

// num reads a JSON number exactly: ids are 64-bit, past what a float64 holds.
func num(v interface{}) int64 {
	if n, ok := v.(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			return i
		}
		if f, err := n.Float64(); err == nil {
			return int64(f)
		}
	}
	return 0
}

func float(v interface{}) float64 {
	if n, ok := v.(json.Number); ok {
		f, _ := n.Float64()
		return f
	}
	return 0
}

// decode keeps numbers as json.Number.
func decode(line []byte, v interface{}) error {
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	return d.Decode(v)
}

func newAdapter(hello map[string]interface{}) (*adapter, error) {
	config, _ := hello["config"].(map[string]interface{})
	keys := make([]string, 0, len(config))
	for k := range config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	params := url.Values{}
	for _, k := range keys {
		if dbWords[k] {
			continue
		}
		switch v := config[k].(type) {
		case string:
			params.Set(k, v)
		case bool:
			params.Set(k, fmt.Sprint(v))
		case json.Number:
			params.Set(k, v.String())
		default:
			return nil, fmt.Errorf("DSN parameter %s: expected a string, number or boolean, got %v", k, v)
		}
	}
	base := mysql.NewConfig()
	base.User, _ = hello["user"].(string)
	base.Passwd, _ = hello["password"].(string)
	base.Net = "tcp"
	base.Addr = net.JoinHostPort(fmt.Sprint(hello["host"]), fmt.Sprint(hello["port"]))
	base.DBName, _ = hello["database"].(string)
	dsn := base.FormatDSN()
	if len(params) > 0 {
		dsn += "?" + params.Encode()
	}
	// The driver's own parser decides what each key means.
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	a := &adapter{conns: map[uint64]*held{}}
	// A key the parser did not know lands in Params, which the driver would send to the
	// server as `SET key=value` on every connect: it is no setting of this client.
	for k := range cfg.Params {
		a.ignored = append(a.ignored, k)
		delete(cfg.Params, k)
	}
	sort.Strings(a.ignored)
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	a.cfg = cfg
	a.db = sql.OpenDB(connector)
	for _, k := range keys {
		v := config[k]
		switch k {
		case "max_open_conns":
			n, err := integer(k, v)
			if err != nil {
				return nil, err
			}
			a.db.SetMaxOpenConns(n)
		case "max_idle_conns":
			n, err := integer(k, v)
			if err != nil {
				return nil, err
			}
			a.db.SetMaxIdleConns(n)
		case "conn_max_lifetime":
			d, err := duration(k, v)
			if err != nil {
				return nil, err
			}
			a.db.SetConnMaxLifetime(d)
		case "conn_max_idle_time":
			d, err := duration(k, v)
			if err != nil {
				return nil, err
			}
			a.db.SetConnMaxIdleTime(d)
		case "checkout_context_timeout":
			d, err := duration(k, v)
			if err != nil {
				return nil, err
			}
			a.checkout = d
		}
	}
	return a, nil
}

func (a *adapter) acquire(req map[string]interface{}) (map[string]interface{}, error) {
	ctx := context.Background()
	if a.checkout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.checkout)
		defer cancel()
	}
	conn, err := a.db.Conn(ctx)
	if err != nil {
		return nil, wrap{"db.Conn", err}
	}
	a.mu.Lock()
	a.next++
	id := a.next
	a.conns[id] = &held{conn: conn}
	a.mu.Unlock()
	return map[string]interface{}{"conn": id}, nil
}

// wrap names the call an error came from.
type wrap struct {
	where string
	err   error
}

func (w wrap) Error() string { return w.err.Error() }

func (a *adapter) held(req map[string]interface{}) (*held, error) {
	id := num(req["conn"])
	a.mu.Lock()
	defer a.mu.Unlock()
	h, ok := a.conns[uint64(id)]
	if !ok {
		return nil, fmt.Errorf("no checked-out connection %v", req["conn"])
	}
	return h, nil
}

func (a *adapter) run(req map[string]interface{}) (map[string]interface{}, error) {
	h, err := a.held(req)
	if err != nil {
		return nil, err
	}
	s, _ := req["statement"].(map[string]interface{})
	h.mu.Lock()
	defer h.mu.Unlock()
	return map[string]interface{}{}, h.statement(s)
}

// querier is what *sql.Conn and *sql.Tx both run statements with.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...interface{}) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...interface{}) (*sql.Rows, error)
}

func drain(rows *sql.Rows, err error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}

func (h *held) statement(s map[string]interface{}) error {
	ctx := context.Background()
	// A request of several steps in one transaction: begin, its statements, commit (or
	// rollback after a failed step), all on this connection.
	switch s["kind"] {
	case "begin":
		if h.tx != nil {
			return errors.New("`begin` inside a transaction already open")
		}
		tx, err := h.conn.BeginTx(ctx, nil)
		if err != nil {
			return wrap{"BeginTx", err}
		}
		h.tx = tx
		return nil
	case "commit", "rollback":
		tx := h.tx
		// database/sql ends the Tx on Commit or Rollback whether or not it succeeds.
		h.tx = nil
		switch {
		case tx == nil && s["kind"] == "rollback":
			return nil // nothing open: nothing to undo
		case tx == nil:
			return errors.New("`commit` with no transaction open")
		case s["kind"] == "commit":
			return wrap{"Tx.Commit", tx.Commit()}.orNil()
		default:
			return wrap{"Tx.Rollback", tx.Rollback()}.orNil()
		}
	}
	var c querier = h.conn
	on := ""
	if h.tx != nil {
		c, on = h.tx, "Tx."
	}
	// The harness names the table (a run's own on an external server); it is an
	// identifier the harness made, never user input.
	table, _ := s["table"].(string)
	id := num(s["id"])
	worker := num(s["worker"])
	switch s["kind"] {
	case "ping":
		return wrap{on + "QueryContext", drain(c.QueryContext(ctx, "SELECT 1"))}.orNil()
	case "select":
		return wrap{on + "QueryContext", drain(c.QueryContext(ctx, "SELECT id, worker FROM "+table+" WHERE id = ?", id))}.orNil()
	case "insert":
		_, err := c.ExecContext(ctx, "INSERT INTO "+table+" (id, worker) VALUES (?, ?)", id, int64(worker))
		return wrap{on + "ExecContext", err}.orNil()
	case "transaction":
		if h.tx != nil {
			return errors.New("`transaction` inside a transaction already open")
		}
		tx, err := h.conn.BeginTx(ctx, nil)
		if err != nil {
			return wrap{"BeginTx", err}
		}
		if _, err = tx.ExecContext(ctx, "INSERT INTO "+table+" (id, worker) VALUES (?, ?)", id, int64(worker)); err != nil {
			tx.Rollback()
			return wrap{"Tx.ExecContext", err}
		}
		if err = drain(tx.QueryContext(ctx, "SELECT COUNT(*) FROM "+table+" WHERE id = ?", id)); err != nil {
			tx.Rollback()
			return wrap{"Tx.QueryContext", err}
		}
		return wrap{"Tx.Commit", tx.Commit()}.orNil()
	case "sleep":
		secs := float(s["seconds"])
		return wrap{on + "QueryContext", drain(c.QueryContext(ctx, "SELECT SLEEP(?)", secs))}.orNil()
	}
	return fmt.Errorf("unknown statement kind `%v`", s["kind"])
}

func (w wrap) orNil() error {
	if w.err == nil {
		return nil
	}
	return w
}

func (a *adapter) release(req map[string]interface{}) (map[string]interface{}, error) {
	h, err := a.held(req)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	delete(a.conns, uint64(num(req["conn"])))
	a.mu.Unlock()
	h.mu.Lock() // after a statement still running on it (the harness gave up waiting)
	defer h.mu.Unlock()
	if h.tx != nil {
		// Returned inside a transaction (the harness gave up on the request): Conn.Close
		// would wait for the Tx forever, and database/sql rolls nothing back itself, so
		// roll back here. One that died with its session goes back to the pool closed;
		// the driver's ResetSession refuses it at its next checkout.
		h.tx.Rollback()
		h.tx = nil
	}
	h.conn.Close() // back to the pool
	return map[string]interface{}{}, nil
}

func (a *adapter) stats() map[string]interface{} {
	s := a.db.Stats()
	return map[string]interface{}{"open": s.OpenConnections, "idle": s.Idle, "in_use": s.InUse}
}

// field reads one unexported setting of the live *sql.DB: database/sql has setters but
// no getters for these, and the point is what the pool really runs with.
func field(db *sql.DB, name string) int64 {
	f := reflect.ValueOf(db).Elem().FieldByName(name)
	if !f.IsValid() {
		return -1
	}
	return f.Int()
}

func (a *adapter) settings() map[string]interface{} {
	idle := field(a.db, "maxIdleCount")
	// database/sql's own reading of maxIdleCount: 0 is its default (2), below 0 is none.
	switch {
	case idle == 0:
		idle = 2
	case idle < 0:
		idle = 0
	}
	secs := func(d time.Duration) float64 { return d.Seconds() }
	checkout := -1.0
	if a.checkout > 0 {
		checkout = secs(a.checkout)
	}
	return map[string]interface{}{
		"vocabulary": "database/sql",
		"settings": map[string]interface{}{
			"max_open_conns":           a.db.Stats().MaxOpenConnections,
			"max_idle_conns":           idle,
			"conn_max_lifetime":        secs(time.Duration(field(a.db, "maxLifetime"))),
			"conn_max_idle_time":       secs(time.Duration(field(a.db, "maxIdleTime"))),
			"checkout_context_timeout": checkout,
			"timeout":                  secs(a.cfg.Timeout),
			"readTimeout":              secs(a.cfg.ReadTimeout),
			"writeTimeout":             secs(a.cfg.WriteTimeout),
			"checkConnLiveness":        a.cfg.CheckConnLiveness,
		},
		"ignored": a.ignored,
	}
}

func serve(a *adapter, req map[string]interface{}) {
	var result map[string]interface{}
	var err error
	switch req["op"] {
	case "acquire":
		result, err = a.acquire(req)
	case "run":
		result, err = a.run(req)
	case "release":
		result, err = a.release(req)
	}
	reply(req["id"], result, err)
}

func reply(id interface{}, result map[string]interface{}, err error) {
	msg := map[string]interface{}{"id": id, "ok": err == nil}
	if err != nil {
		var w wrap
		if errors.As(err, &w) {
			msg["error"] = errorOf(w.where, w.err)
		} else {
			msg["error"] = errorOf("adapter", err)
		}
	}
	for k, v := range result {
		msg[k] = v
	}
	send(msg)
}

func main() {
	in := bufio.NewReaderSize(os.Stdin, 1<<16)
	first, err := in.ReadBytes('\n')
	if len(first) == 0 {
		return
	}
	var hello map[string]interface{}
	if err = decode(first, &hello); err != nil {
		fmt.Fprintln(os.Stderr, "hello is not JSON:", err)
		os.Exit(1)
	}
	a, err := newAdapter(hello)
	if err != nil {
		fmt.Fprintln(os.Stderr, "building the pool failed:", err)
		reply(hello["id"], nil, err)
		return
	}
	reply(hello["id"], map[string]interface{}{"protocol": protocol, "client": "database/sql",
		"version": strings.TrimPrefix(runtime.Version(), "go"), "driver": "go-sql-driver/mysql " + driverVersion}, nil)
	for {
		line, err := in.ReadBytes('\n')
		if len(strings.TrimSpace(string(line))) > 0 {
			var req map[string]interface{}
			if jerr := decode(line, &req); jerr != nil {
				fmt.Fprintln(os.Stderr, "a request is not JSON:", jerr)
				os.Exit(1)
			}
			switch req["op"] {
			case "close":
				a.db.Close()
				reply(req["id"], map[string]interface{}{}, nil)
				return
			case "stats": // answered at once: the harness's liveness check
				reply(req["id"], a.stats(), nil)
			case "settings":
				reply(req["id"], a.settings(), nil)
			case "acquire", "run", "release":
				go serve(a, req)
			default:
				reply(req["id"], nil, fmt.Errorf("unknown op `%v`", req["op"]))
			}
		}
		if err != nil {
			return
		}
	}
}
