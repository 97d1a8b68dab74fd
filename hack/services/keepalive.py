"""xcheckpoint-test/services: a client holding one keep-alive HTTP
connection to HOST:PORT, asking PATH every second and printing each answer
with its counter: "N: ANSWER". It never reconnects: when the connection
breaks it prints "broken: ERROR" and exits 1."""
import http.client
import sys
import time

host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conn = http.client.HTTPConnection(host, port, timeout=600)
n = 0
while True:
    try:
        conn.request("GET", path)
        body = conn.getresponse().read().decode().strip()
    except (OSError, http.client.HTTPException) as e:
        print("broken: %r" % e, flush=True)
        sys.exit(1)
    n += 1
    print("%d: %s" % (n, body), flush=True)
    time.sleep(1)
