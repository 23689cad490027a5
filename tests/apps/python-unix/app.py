"""HTTP on :8000 in front of a backend on a Unix socket; the backend keeps a tiny database."""
import http.server
import os
import re
import socket
import socketserver
import threading

SOCKET = "/run/app/backend.sock"
DATA = "/var/lib/app"


def bump_counter():
    path = os.path.join(DATA, "counter")
    with open(path) as f:
        count = int(f.read().strip() or 0) + 1
    with open(path, "w") as f:
        f.write(f"{count}\n")
    return count


class Backend(socketserver.StreamRequestHandler):
    def handle(self):
        request = self.rfile.readline().decode().strip()
        if request.startswith("table "):
            name = request.split(" ", 1)[1]
            with open(os.path.join(DATA, "tables", name), "a") as f:
                f.write("created\n")
        count = bump_counter()
        self.wfile.write(f"backend ok {count}\n".encode())


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def ask(line):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(SOCKET)
        s.sendall((line + "\n").encode())
        return s.makefile().readline()


class Front(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        match = re.fullmatch(r"/table\?name=([a-z0-9_]+)", self.path)
        if self.path == "/":
            body = ask("hello")
        elif match:
            body = ask("table " + match.group(1))
        else:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    if os.path.exists(SOCKET):
        os.unlink(SOCKET)
    backend = UnixServer(SOCKET, Backend)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    http.server.ThreadingHTTPServer(("", 8000), Front).serve_forever()
