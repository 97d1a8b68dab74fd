"""xcheckpoint-test/services: a Python HTTP service holding its state in
memory: every GET / adds one to a counter and answers with it ("count N").
A second thread is its load: it asks for / every 0.2 s over one keep-alive
connection and prints the answer every tenth time."""
import http.client
import http.server
import sys
import threading
import time

lock = threading.Lock()
count = 0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        global count
        with lock:
            count += 1
            n = count
        body = ("count %d\n" % n).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def load(port):
    conn = None
    i = 0
    while True:
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", "/")
            body = conn.getresponse().read().decode().strip()
            i += 1
            if i % 10 == 0:
                print("load: " + body, flush=True)
        except OSError as e:
            print("load: error %s" % e, flush=True)
            conn = None
        time.sleep(0.2)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    srv = http.server.ThreadingHTTPServer(("", port), Handler)
    threading.Thread(target=load, args=(port,), daemon=True).start()
    print("serving on %d" % port, flush=True)
    srv.serve_forever()


main()
