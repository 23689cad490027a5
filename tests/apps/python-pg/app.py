"""Answers GET / with a row it wrote to PostgreSQL at start; exits 1 without the database."""
import http.server
import os
import sys

import psycopg2

try:
    db = psycopg2.connect(host=os.environ["PGHOST"], user="postgres", dbname="postgres",
                          connect_timeout=5)
except Exception as err:  # noqa: BLE001 - any failure to reach the database ends the app
    print(f"cannot reach the database at {os.environ.get('PGHOST')}: {err}", file=sys.stderr)
    sys.exit(1)
db.autocommit = True
with db.cursor() as cur:
    cur.execute("CREATE TABLE IF NOT EXISTS greeting (text varchar)")
    cur.execute("DELETE FROM greeting")
    cur.execute("INSERT INTO greeting VALUES (%s)", (os.environ.get("GREETING", "hello"),))


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with db.cursor() as cur:
            cur.execute("SELECT text, (SELECT count(*) FROM greeting) FROM greeting")
            text, rows = cur.fetchone()
        body = f"{text} from postgres ({rows} row)\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


print("listening on 8000", flush=True)
http.server.HTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
