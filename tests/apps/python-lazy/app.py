"""An HTTP app whose handlers import what they use inside the handler."""
import http.server


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/":
            body = "hello\n"
        elif self.path == "/json":
            import json
            body = json.dumps({"path": self.path, "ok": True}) + "\n"
        elif self.path == "/xml":
            from xml.dom import minidom
            body = minidom.parseString("<a><b>x</b></a>").documentElement.toxml() + "\n"
        elif self.path == "/decimal":
            import decimal
            body = str(decimal.Decimal("1.1") + decimal.Decimal("2.2")) + "\n"
        else:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


http.server.ThreadingHTTPServer(("", 8000), Handler).serve_forever()
