"""A stand-in for a running Framerr, for the end-to-end tests.

Like Framerr 0.4.1 (better-sqlite3), it opens the database once, in WAL
mode, and keeps that one connection for its whole life: every read and
write below goes through it. It writes a row into `system_config` every
few milliseconds (`standin-N`, holding the `marker` row it saw in the same
transaction) and logs each committed one, and it answers like Framerr's
`GET /api/auth/setup/status` (users counted on every call) and
`POST /api/auth/login` (bcrypt, as Framerr checks `users.password`).

Usage: framerr.py DB WRITES_LOG. Prints "listening on PORT"; SIGTERM stops
the writer, closes the connection and exits 0.
"""

import json
import signal
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

db_path, log_path = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False, timeout=30)
conn.execute("PRAGMA journal_mode=WAL")
lock = threading.Lock()
stop = threading.Event()
log = open(log_path, "a", buffering=1)


def query(sql, args=()):
    with lock:
        return conn.execute(sql, args).fetchall()


def marker():
    rows = conn.execute("SELECT value FROM system_config WHERE key = 'marker'").fetchall()
    return rows[0][0] if rows else ""


def writer():
    n = 0
    while not stop.is_set():
        n += 1
        try:
            with lock:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    seen = marker()
                    conn.execute(
                        "INSERT INTO system_config (key, value) VALUES (?, ?)", (f"standin-{n}", seen)
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            log.write(f"standin-{n} {seen}\n")
        except sqlite3.Error as e:
            log.write(f"standin-{n} failed {e}\n")
        time.sleep(0.005)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/api/auth/setup/status":
            users = query("SELECT count(*) FROM users")[0][0]
            self.answer(200, {"needsSetup": users == 0})
        elif self.path == "/standin/state":
            users = [r[0] for r in query("SELECT username FROM users ORDER BY username")]
            with lock:
                seen = marker()
            self.answer(200, {"users": users, "marker": seen})
        else:
            self.answer(404, {"error": "Not found"})

    def do_POST(self):
        if self.path != "/api/auth/login":
            return self.answer(404, {"error": "Not found"})
        import bcrypt  # only sign-in needs it (the benchmark runs without)

        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        rows = query("SELECT password FROM users WHERE lower(username) = lower(?)", (body.get("username", ""),))
        password = body.get("password", "").encode()
        if rows and rows[0][0] and bcrypt.checkpw(password, rows[0][0].encode()):
            self.answer(200, {"success": True})
        else:
            self.answer(401, {"error": "Invalid username or password"})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threads = [threading.Thread(target=writer, daemon=True), threading.Thread(target=server.serve_forever, daemon=True)]


def shutdown(*_):
    stop.set()
    threads[0].join()
    with lock:
        conn.close()
    log.close()
    sys.exit(0)


signal.signal(signal.SIGTERM, shutdown)
for t in threads:
    t.start()
print(f"listening on {server.server_address[1]}", flush=True)
while True:
    time.sleep(3600)
