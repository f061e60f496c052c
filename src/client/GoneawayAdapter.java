// goneaway's adapter for HikariCP with MariaDB Connector/J: adapter protocol 1.
//
// The harness decides when to check out, run and return; this program only does what it
// is told with a real HikariDataSource, a thread per request, and reports the library's
// own exceptions, counts and settings. One JSON object per line on stdin and stdout;
// stderr is for humans (HikariCP's warnings through slf4j-simple).

import com.zaxxer.hikari.HikariConfigMXBean;
import com.zaxxer.hikari.HikariDataSource;
import com.zaxxer.hikari.HikariPoolMXBean;
import com.zaxxer.hikari.util.PropertyElf;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.Driver;
import java.sql.DriverManager;
import java.sql.DriverPropertyInfo;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;

public final class GoneawayAdapter {
    static final int PROTOCOL = 1;
    static final PrintStream OUT = new PrintStream(System.out, false, StandardCharsets.UTF_8);

    static synchronized void send(Map<String, Object> msg) {
        OUT.print(Json.write(msg));
        OUT.print('\n');
        OUT.flush();
    }

    /** The exception as the library threw it: the server's number where there is one. */
    static Map<String, Object> errorOf(Throwable e) {
        Map<String, Object> m = new LinkedHashMap<>();
        Object code = null;
        String type = e.getClass().getName();
        if (e instanceof SQLException) {
            SQLException s = (SQLException) e;
            if (s.getErrorCode() > 0) code = s.getErrorCode();
            if (s.getSQLState() != null) type += " (SQLState " + s.getSQLState() + ")";
        }
        m.put("code", code);
        m.put("type", type);
        String message = String.valueOf(e.getMessage());
        // HikariCP's timeout says why on its cause: keep it, on a line of its own.
        if (e.getCause() != null && e.getCause() != e) message += "\ncause: " + e.getCause();
        m.put("message", message);
        return m;
    }

    static final class Held {
        final Connection conn;
        Held(Connection conn) { this.conn = conn; }
    }

    final HikariDataSource ds;
    final List<String> ignored = new ArrayList<>();
    final String socketTimeout;
    final Map<Long, Held> conns = new ConcurrentHashMap<>();
    final AtomicLong next = new AtomicLong();

    GoneawayAdapter(Map<String, Object> hello) throws Exception {
        @SuppressWarnings("unchecked")
        Map<String, Object> config = hello.get("config") == null
            ? new LinkedHashMap<>() : (Map<String, Object>) hello.get("config");
        Properties props = new Properties();
        String urlParameters = "";
        for (Map.Entry<String, Object> e : config.entrySet()) {
            Object v = e.getValue();
            String text = String.valueOf(v);
            if (e.getKey().equals("urlParameters")) urlParameters = text;
            else props.setProperty(e.getKey(), text);
        }
        String url = "jdbc:mariadb://" + hello.get("host") + ":" + num(hello.get("port")) + "/" + hello.get("database")
            + (urlParameters.isEmpty() ? "" : "?" + urlParameters);
        // What Spring Boot does: a HikariDataSource with its properties set one by one by
        // name (HikariCP's own PropertyElf refuses a name it has no setter for), started
        // lazily by the first getConnection().
        ds = new HikariDataSource();
        ds.setJdbcUrl(url);
        ds.setUsername((String) hello.get("user"));
        ds.setPassword((String) hello.get("password"));
        PropertyElf.setTargetFromProperties(ds, props);
        ds.validate();
        // dataSource.* and URL parameters go to the driver, which drops names it does not
        // know without a word: its own list of properties says which ones it read.
        Driver driver = DriverManager.getDriver(url);
        Set<String> known = new HashSet<>();
        for (DriverPropertyInfo p : driver.getPropertyInfo(url, new Properties())) known.add(p.name);
        for (String name : ds.getDataSourceProperties().stringPropertyNames()) {
            if (!known.contains(name)) ignored.add("dataSource." + name);
        }
        String socket = ds.getDataSourceProperties().getProperty("socketTimeout");
        for (String pair : urlParameters.split("&")) {
            if (pair.isEmpty()) continue;
            String[] kv = pair.split("=", 2);
            if (!known.contains(kv[0])) ignored.add("urlParameters " + kv[0]);
            if (kv[0].equals("socketTimeout") && kv.length == 2) socket = kv[1];
        }
        socketTimeout = socket;
    }

    static long num(Object o) { return o instanceof Number ? ((Number) o).longValue() : Long.parseLong(String.valueOf(o)); }

    Map<String, Object> acquire(Map<String, Object> req) throws Exception {
        Connection c = ds.getConnection();
        long id = next.incrementAndGet();
        conns.put(id, new Held(c));
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("conn", id);
        return r;
    }

    Held held(Map<String, Object> req) throws Exception {
        Held h = conns.get(num(req.get("conn")));
        if (h == null) throw new IllegalStateException("no checked-out connection " + req.get("conn"));
        return h;
    }

    Map<String, Object> run(Map<String, Object> req) throws Exception {
        Held h = held(req);
        @SuppressWarnings("unchecked")
        Map<String, Object> s = (Map<String, Object>) req.get("statement");
        synchronized (h) {
            statement(h.conn, s);
        }
        return new LinkedHashMap<>();
    }

    static void query(Connection c, String sql, Object... args) throws SQLException {
        try (PreparedStatement p = c.prepareStatement(sql)) {
            for (int i = 0; i < args.length; i++) p.setObject(i + 1, args[i]);
            if (p.execute()) {
                try (ResultSet rs = p.getResultSet()) {
                    while (rs.next()) { }
                }
            }
        }
    }

    static void statement(Connection c, Map<String, Object> s) throws Exception {
        // The harness names the table (a run's own on an external server); it is an
        // identifier the harness made, never user input.
        String table = String.valueOf(s.get("table"));
        String kind = String.valueOf(s.get("kind"));
        switch (kind) {
            // A request of several steps in one transaction: begin, its statements, commit
            // (or rollback after a failed step), all on this connection. Autocommit is put
            // back only after a commit or rollback that succeeded: `SET autocommit=1` would
            // commit a transaction still open. Otherwise HikariCP's close() does it, after
            // rolling back (it does whenever autocommit is off and a statement ran), so a
            // connection returned mid-transaction never goes back to the pool inside one.
            case "begin": c.setAutoCommit(false); break;
            case "commit":
                try {
                    c.commit();
                } catch (SQLException e) {
                    try { c.rollback(); } catch (SQLException ignored) { /* the first error is the one to report */ }
                    throw e;
                }
                c.setAutoCommit(true);
                break;
            case "rollback":
                c.rollback();
                c.setAutoCommit(true);
                break;
            case "ping": query(c, "SELECT 1"); break;
            case "select": query(c, "SELECT id, worker FROM " + table + " WHERE id = ?", num(s.get("id"))); break;
            case "insert":
                query(c, "INSERT INTO " + table + " (id, worker) VALUES (?, ?)", num(s.get("id")), num(s.get("worker")));
                break;
            case "transaction":
                if (!c.getAutoCommit()) throw new IllegalStateException("`transaction` inside a transaction already open");
                c.setAutoCommit(false);
                try {
                    query(c, "INSERT INTO " + table + " (id, worker) VALUES (?, ?)", num(s.get("id")), num(s.get("worker")));
                    query(c, "SELECT COUNT(*) FROM " + table + " WHERE id = ?", num(s.get("id")));
                    c.commit();
                } catch (SQLException e) {
                    try { c.rollback(); } catch (SQLException ignored) { /* the first error is the one to report */ }
                    throw e;
                } finally {
                    try { c.setAutoCommit(true); } catch (SQLException ignored) { /* reported by the next statement */ }
                }
                break;
            case "sleep": query(c, "SELECT SLEEP(?)", ((Number) s.get("seconds")).doubleValue()); break;
            default: throw new IllegalArgumentException("unknown statement kind `" + kind + "`");
        }
    }

    Map<String, Object> release(Map<String, Object> req) throws Exception {
        Held h = held(req);
        conns.remove(num(req.get("conn")));
        synchronized (h) { // after a statement still running on it (the harness gave up waiting)
            h.conn.close(); // back to the pool
        }
        return new LinkedHashMap<>();
    }

    Map<String, Object> stats() {
        Map<String, Object> r = new LinkedHashMap<>();
        HikariPoolMXBean pool = ds.getHikariPoolMXBean(); // null until the pool starts
        int total = pool == null ? 0 : pool.getTotalConnections();
        int idle = pool == null ? 0 : pool.getIdleConnections();
        r.put("open", total);
        r.put("idle", idle);
        r.put("in_use", pool == null ? 0 : pool.getActiveConnections());
        return r;
    }

    Map<String, Object> settings() {
        HikariConfigMXBean c = ds.getHikariConfigMXBean();
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("maximumPoolSize", c.getMaximumPoolSize());
        s.put("minimumIdle", c.getMinimumIdle());
        s.put("connectionTimeout", c.getConnectionTimeout());
        s.put("validationTimeout", c.getValidationTimeout());
        s.put("idleTimeout", c.getIdleTimeout());
        s.put("maxLifetime", c.getMaxLifetime());
        s.put("socketTimeout", socketTimeout == null ? "0" : socketTimeout);
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("vocabulary", "hikaricp");
        r.put("settings", s);
        r.put("ignored", new ArrayList<>(new TreeSet<>(ignored)));
        return r;
    }

    static void reply(Object id, Map<String, Object> result, Throwable err) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", id);
        m.put("ok", err == null);
        if (err != null) m.put("error", errorOf(err));
        else m.putAll(result);
        send(m);
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String first = in.readLine();
        if (first == null) return;
        @SuppressWarnings("unchecked")
        Map<String, Object> hello = (Map<String, Object>) Json.read(first);
        GoneawayAdapter a;
        try {
            a = new GoneawayAdapter(hello);
        } catch (Throwable e) {
            e.printStackTrace();
            reply(hello.get("id"), null, e);
            return;
        }
        Map<String, Object> h = new LinkedHashMap<>();
        h.put("protocol", PROTOCOL);
        h.put("client", "hikaricp");
        h.put("version", System.getProperty("goneaway.hikaricp", "unknown"));
        h.put("driver", "mariadb-java-client " + System.getProperty("goneaway.mariadb", "unknown")
            + " (Java " + System.getProperty("java.version") + ")");
        reply(hello.get("id"), h, null);
        ExecutorService workers = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r);
            t.setDaemon(true);
            return t;
        });
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank()) continue;
            @SuppressWarnings("unchecked")
            Map<String, Object> req = (Map<String, Object>) Json.read(line);
            Object id = req.get("id");
            String op = String.valueOf(req.get("op"));
            switch (op) {
                case "stats": reply(id, a.stats(), null); break; // at once: the liveness check
                case "settings": reply(id, a.settings(), null); break;
                case "close":
                    a.ds.close();
                    reply(id, new LinkedHashMap<>(), null);
                    System.exit(0);
                    break;
                case "acquire": case "run": case "release":
                    workers.submit(() -> {
                        try {
                            Map<String, Object> r = op.equals("acquire") ? a.acquire(req)
                                : op.equals("run") ? a.run(req) : a.release(req);
                            reply(id, r, null);
                        } catch (Throwable e) {
                            reply(id, null, e);
                        }
                    });
                    break;
                default: reply(id, null, new IllegalArgumentException("unknown op `" + op + "`"));
            }
        }
        System.exit(0);
    }

    /** The little JSON the protocol needs: objects, arrays, strings, numbers (Long or Double), booleans, null. */
    static final class Json {
        final String s;
        int i;
        Json(String s) { this.s = s; }

        static Object read(String s) {
            Json j = new Json(s);
            Object v = j.value();
            j.ws();
            if (j.i != s.length()) throw new IllegalArgumentException("trailing text in JSON at " + j.i);
            return v;
        }

        void ws() { while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++; }

        Object value() {
            ws();
            char c = s.charAt(i);
            if (c == '{') {
                Map<String, Object> m = new LinkedHashMap<>();
                i++;
                ws();
                if (s.charAt(i) == '}') { i++; return m; }
                while (true) {
                    ws();
                    String k = string();
                    ws();
                    i++; // ':'
                    m.put(k, value());
                    ws();
                    if (s.charAt(i++) == '}') return m;
                }
            }
            if (c == '[') {
                List<Object> l = new ArrayList<>();
                i++;
                ws();
                if (s.charAt(i) == ']') { i++; return l; }
                while (true) {
                    l.add(value());
                    ws();
                    if (s.charAt(i++) == ']') return l;
                }
            }
            if (c == '"') return string();
            if (s.startsWith("true", i)) { i += 4; return Boolean.TRUE; }
            if (s.startsWith("false", i)) { i += 5; return Boolean.FALSE; }
            if (s.startsWith("null", i)) { i += 4; return null; }
            int start = i;
            while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) i++;
            String n = s.substring(start, i);
            // Integers stay exact: ids are 64-bit, past what a double holds.
            if (n.matches("-?[0-9]+")) return Long.parseLong(n);
            return Double.parseDouble(n);
        }

        String string() {
            StringBuilder b = new StringBuilder();
            i++; // opening quote
            while (true) {
                char c = s.charAt(i++);
                if (c == '"') return b.toString();
                if (c != '\\') { b.append(c); continue; }
                char e = s.charAt(i++);
                switch (e) {
                    case 'n': b.append('\n'); break;
                    case 't': b.append('\t'); break;
                    case 'r': b.append('\r'); break;
                    case 'b': b.append('\b'); break;
                    case 'f': b.append('\f'); break;
                    case 'u': b.append((char) Integer.parseInt(s.substring(i, i + 4), 16)); i += 4; break;
                    default: b.append(e);
                }
            }
        }

        static String write(Object o) {
            StringBuilder b = new StringBuilder();
            write(b, o);
            return b.toString();
        }

        static void write(StringBuilder b, Object o) {
            if (o == null) b.append("null");
            else if (o instanceof Map) {
                b.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : ((Map<?, ?>) o).entrySet()) {
                    if (!first) b.append(',');
                    first = false;
                    str(b, String.valueOf(e.getKey()));
                    b.append(':');
                    write(b, e.getValue());
                }
                b.append('}');
            } else if (o instanceof List) {
                b.append('[');
                boolean first = true;
                for (Object v : (List<?>) o) {
                    if (!first) b.append(',');
                    first = false;
                    write(b, v);
                }
                b.append(']');
            } else if (o instanceof Double) {
                double d = (Double) o;
                if (d == Math.rint(d) && Math.abs(d) < 1e15) b.append((long) d);
                else b.append(d);
            } else if (o instanceof Number || o instanceof Boolean) b.append(o);
            else str(b, String.valueOf(o));
        }

        static void str(StringBuilder b, String s) {
            b.append('"');
            for (int k = 0; k < s.length(); k++) {
                char c = s.charAt(k);
                switch (c) {
                    case '"': b.append("\\\""); break;
                    case '\\': b.append("\\\\"); break;
                    case '\n': b.append("\\n"); break;
                    case '\r': b.append("\\r"); break;
                    case '\t': b.append("\\t"); break;
                    default:
                        if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                        else b.append(c);
                }
            }
            b.append('"');
        }
    }
}
