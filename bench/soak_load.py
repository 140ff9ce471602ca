#!/usr/bin/python3
"""Mixed valid and hostile load on a running `seqrec serve` (bench/soak.sh starts it).

Standard library only. Every client is bounded: a fixed number of threads, each holding at
most a fixed number of connections. For --seconds it runs, at once:

- valid clients (--valid-clients threads, one keep-alive connection each): POST /v1/events
  (one event for one of --sessions sessions), POST /v1/recommend, GET /health, and with the
  API key GET /v1/sessions/ID; the latency of every valid probe is recorded;
- hostile clients (--hostile-clients threads): malformed JSON, huge headers, a bad Host
  (DNS rebinding), a wrong content type, a cross-site reload, reloads and session reads
  without the key, unknown sessions and endpoints, oversized bodies, garbage bytes, an
  HTTP/2 preface, HTTP/1.1 without Host; a new connection each;
- slowloris: --slowloris connections kept open, each sending a request one byte every
  --drip seconds (the server must answer 408 after --read-timeout and close), reopened
  when closed;
- dropped connections: a thread that opens connections and closes or resets them at once,
  before, during or after a request;
- reloads: POST /v1/reload with the key and SIGHUP, alternately, every --reload-every s;
- a monitor: every second the server's RSS (/proc/PID/status), its open file descriptors
  and threads, and a /health probe; a probe without an answer within --hang-timeout s is a
  hang, a process that is gone is a crash.

Writes a JSON report (--out): status counts per kind of request, latency percentiles of
the valid probes, RSS over time, crashes and hangs, reload outcomes.
"""
import argparse
import http.client
import json
import os
import random
import signal
import socket
import threading
import time

STOP = threading.Event()
LOCK = threading.Lock()
COUNTS = {}  # kind -> {status: n}
LATENCY = {}  # valid kind -> [seconds]
NOTES = []  # unexpected events, first ones only


def count(kind, status):
    with LOCK:
        c = COUNTS.setdefault(kind, {})
        c[str(status)] = c.get(str(status), 0) + 1


def note(text):
    with LOCK:
        if len(NOTES) < 50:
            NOTES.append(f"{time.strftime('%H:%M:%S')} {text}")


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[i]


def raw_exchange(port, data, timeout=5.0, read=True):
    """Sends `data` on a new connection; returns the status of the first response, or
    'closed' (the server closed without answering), 'timeout', 'refused'."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return "refused"
    try:
        s.settimeout(timeout)
        try:
            s.sendall(data)
        except OSError:
            pass  # the server may answer and close before taking it all
        if not read:
            return None
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                return "closed"
            buf += chunk
        line = buf.split(b"\r\n", 1)[0].split()
        return int(line[1]) if len(line) >= 2 and line[1].isdigit() else "garbled"
    except socket.timeout:
        return "timeout"
    except OSError:
        return "reset"
    finally:
        s.close()


class Valid(threading.Thread):
    def __init__(self, args, items, seed):
        super().__init__(daemon=True)
        self.a, self.items, self.rng = args, items, random.Random(seed)
        self.conn = None

    def request(self, kind, method, path, body=None, headers=None):
        h = {"Host": f"127.0.0.1:{self.a.port}"}
        if body is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        for attempt in range(2):  # a keep-alive connection closed by the server: reopen once
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.a.port, timeout=self.a.hang_timeout)
            t0 = time.perf_counter()
            try:
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                r.read()
                dt = time.perf_counter() - t0
                count(kind, r.status)
                with LOCK:
                    LATENCY.setdefault(kind, []).append(dt)
                if r.status >= 500:
                    note(f"{kind}: {r.status}")
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status
            except (http.client.HTTPException, OSError) as e:
                self.conn.close()
                self.conn = None
                if isinstance(e, socket.timeout):
                    count(kind, "timeout")
                    note(f"{kind}: no answer within {self.a.hang_timeout} s")
                    return None
                if attempt == 1:
                    count(kind, "error")
                    note(f"{kind}: {type(e).__name__}: {e}")
        return None

    def run(self):
        key = {"Authorization": f"Bearer {self.a.key}"} if self.a.key else {}
        while not STOP.is_set():
            x = self.rng.random()
            sid = f"soak-{self.rng.randrange(self.a.sessions)}"
            if x < 0.70:
                body = json.dumps({"session_id": sid, "items": [self.rng.choice(self.items)], "k": 20})
                self.request("events", "POST", "/v1/events", body)
            elif x < 0.85:
                items = [self.rng.choice(self.items) for _ in range(self.rng.randint(1, 5))]
                self.request("recommend", "POST", "/v1/recommend", json.dumps({"items": items, "k": 20}))
            elif x < 0.95:
                self.request("session_read", "GET", f"/v1/sessions/{sid}", headers=key)
            else:
                self.request("health", "GET", "/health")


def hostile_requests(port, items):
    """(kind, bytes) of one hostile request, chosen at random."""
    h = f"Host: 127.0.0.1:{port}\r\n"
    ev = json.dumps({"session_id": "hostile", "items": [random.choice(items)]})

    def post(path, body, extra=""):
        return (f"POST {path} HTTP/1.1\r\n{h}{extra}Content-Length: {len(body)}\r\n\r\n{body}").encode()

    choices = [
        ("bad_json", lambda: post("/v1/events", '{"session_id": "x", "items": [', "Content-Type: application/json\r\n")),
        ("bad_fields", lambda: post("/v1/recommend", '{"items": {}, "k": -1, "zzz": 1}', "Content-Type: application/json\r\n")),
        ("huge_headers", lambda: f"GET /health HTTP/1.1\r\n{h}X-Big: {'a' * 40000}\r\n\r\n".encode()),
        ("many_headers", lambda: (f"GET /health HTTP/1.1\r\n{h}" + "".join(f"X-{i}: y\r\n" for i in range(150)) + "\r\n").encode()),
        ("bad_host", lambda: b"GET /v1/sessions/soak-1 HTTP/1.1\r\nHost: rebind.attacker.example\r\n\r\n"),
        ("no_host", lambda: b"GET /health HTTP/1.1\r\n\r\n"),
        ("wrong_content_type", lambda: post("/v1/events", ev, "Content-Type: text/plain\r\n")),
        ("form_content_type", lambda: post("/v1/events", ev, "Content-Type: application/x-www-form-urlencoded\r\n")),
        ("cross_site_reload", lambda: f"POST /v1/reload HTTP/1.1\r\n{h}Origin: http://attacker.example\r\nContent-Length: 0\r\n\r\n".encode()),
        ("reload_without_key", lambda: f"POST /v1/reload HTTP/1.1\r\n{h}Content-Length: 0\r\n\r\n".encode()),
        ("session_without_key", lambda: f"GET /v1/sessions/soak-1 HTTP/1.1\r\n{h}\r\n".encode()),
        ("unknown_session", lambda: f"GET /v1/sessions/nope-{random.randrange(10**9)} HTTP/1.1\r\n{h}Authorization: Bearer {ARGS.key}\r\n\r\n".encode()),
        ("unknown_endpoint", lambda: f"GET /v2/{random.randrange(10**6)} HTTP/1.1\r\n{h}\r\n".encode()),
        ("oversized_body", lambda: f"POST /v1/events HTTP/1.1\r\n{h}Content-Type: application/json\r\nContent-Length: 999999999\r\n\r\n".encode()),
        ("long_request_line", lambda: f"GET /{'a' * 9000} HTTP/1.1\r\n{h}\r\n".encode()),
        ("garbage", lambda: bytes(random.randrange(256) for _ in range(random.randrange(1, 300))) + b"\r\n\r\n"),
        ("http2_preface", lambda: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        ("bad_chunked", lambda: f"POST /v1/events HTTP/1.1\r\n{h}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".encode()),
        ("smuggling", lambda: f"POST /v1/events HTTP/1.1\r\n{h}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".encode()),
        ("bad_method", lambda: f"BREW /health HTTP/1.1\r\n{h}\r\n".encode()),
        ("options_preflight", lambda: f"OPTIONS /v1/events HTTP/1.1\r\n{h}Origin: http://attacker.example\r\nAccess-Control-Request-Method: POST\r\n\r\n".encode()),
    ]
    kind, make = random.choice(choices)
    return kind, make()


class Hostile(threading.Thread):
    def __init__(self, args, items):
        super().__init__(daemon=True)
        self.a, self.items = args, items

    def run(self):
        while not STOP.is_set():
            kind, data = hostile_requests(self.a.port, self.items)
            st = raw_exchange(self.a.port, data, timeout=self.a.hang_timeout)
            count("hostile:" + kind, st)
            if st == "timeout":
                note(f"hostile {kind}: no answer within {self.a.hang_timeout} s")
            elif isinstance(st, int) and st >= 500 and st not in (501, 505):
                note(f"hostile {kind}: {st}")


class Slowloris(threading.Thread):
    """Holds up to N connections, each dribbling a request one byte at a time."""

    def __init__(self, args):
        super().__init__(daemon=True)
        self.a = args
        self.req = f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n".encode()

    def run(self):
        conns = []  # [socket, bytes sent, opened at]
        while not STOP.is_set():
            while len(conns) < self.a.slowloris:
                try:
                    s = socket.create_connection(("127.0.0.1", self.a.port), timeout=2)
                    s.setblocking(False)
                    conns.append([s, 0, time.monotonic()])
                    count("slowloris", "opened")
                except OSError:
                    count("slowloris", "connect_failed")
                    break
            alive = []
            for c in conns:
                s = c[0]
                try:
                    data = s.recv(4096)
                    # An answer (408 expected) or EOF: the server ended it.
                    if data:
                        parts = data.split(b"\r\n", 1)[0].split()
                        count("slowloris", int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else "garbled")
                    else:
                        count("slowloris", "closed")
                    s.close()
                    continue
                except BlockingIOError:
                    pass
                except OSError:
                    count("slowloris", "reset")
                    s.close()
                    continue
                try:
                    s.send(self.req[c[1] % len(self.req):c[1] % len(self.req) + 1])
                    c[1] += 1
                except BlockingIOError:
                    pass
                except OSError:
                    count("slowloris", "reset")
                    s.close()
                    continue
                if time.monotonic() - c[2] > 4 * self.a.read_timeout + 10:
                    count("slowloris", "never_timed_out")
                    note("a slowloris connection outlived 4x the read timeout")
                    s.close()
                    continue
                alive.append(c)
            conns = alive
            STOP.wait(self.a.drip)
        for c in conns:
            c[0].close()


class Dropper(threading.Thread):
    """Connections closed or reset by the client at every stage of a request."""

    def __init__(self, args, items):
        super().__init__(daemon=True)
        self.a, self.items = args, items

    def run(self):
        body = json.dumps({"session_id": "dropped", "items": [self.items[0]]}).encode()
        full = (f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:{self.a.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        while not STOP.is_set():
            how = random.choice(["connect_only", "half_request", "full_request_no_read", "reset_after_request"])
            try:
                s = socket.create_connection(("127.0.0.1", self.a.port), timeout=2)
                if how == "half_request":
                    s.sendall(full[: len(full) // 2])
                elif how in ("full_request_no_read", "reset_after_request"):
                    s.sendall(full)
                if how == "reset_after_request":
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.close()
                count("dropped", how)
            except OSError:
                count("dropped", "connect_failed")
            STOP.wait(0.005)


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        return int(fields["VmRSS"].split()[0]), int(fields["Threads"])
    except (OSError, KeyError, ValueError):
        return None, None


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--items", required=True, help="file with item ids, one a line")
    p.add_argument("--key", default="", help="the API key (admin scope)")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--valid-clients", type=int, default=4)
    p.add_argument("--hostile-clients", type=int, default=2)
    p.add_argument("--slowloris", type=int, default=50)
    p.add_argument("--drip", type=float, default=1.0)
    p.add_argument("--read-timeout", type=float, default=10.0)
    p.add_argument("--sessions", type=int, default=1000)
    p.add_argument("--reload-every", type=float, default=20.0)
    p.add_argument("--hang-timeout", type=float, default=10.0)
    p.add_argument("--out", required=True)
    global ARGS
    ARGS = a = p.parse_args()
    with open(a.items) as f:
        items = [line.strip() for line in f if line.strip()]
    random.seed(1)
    threads = [Valid(a, items, i) for i in range(a.valid_clients)]
    threads += [Hostile(a, items) for _ in range(a.hostile_clients)]
    threads += [Slowloris(a), Dropper(a, items)]
    t0 = time.monotonic()
    for t in threads:
        t.start()

    rss, reloads, hangs, crashed = [], [], 0, False
    next_reload, reload_no, health_lat = t0 + a.reload_every, 0, []
    while time.monotonic() - t0 < a.seconds:
        time.sleep(1.0)
        now = time.monotonic()
        if not alive(a.pid):
            crashed = True
            note("the server process is gone")
            break
        kb, nthreads = rss_kb(a.pid)
        try:
            fds = len(os.listdir(f"/proc/{a.pid}/fd"))
        except OSError:
            fds = None
        # A probe on a new connection: answered within the hang timeout?
        t1 = time.perf_counter()
        st = raw_exchange(a.port, f"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode(),
                          timeout=a.hang_timeout)
        dt = time.perf_counter() - t1
        if st != 200:
            hangs += 1
            note(f"monitor /health: {st}")
        else:
            health_lat.append(dt)
        rss.append({"t": round(now - t0, 1), "rss_kb": kb, "threads": nthreads, "fds": fds})
        if now >= next_reload:
            reload_no += 1
            if reload_no % 2 == 1:
                st = raw_exchange(a.port, (f"POST /v1/reload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                           f"Authorization: Bearer {a.key}\r\nContent-Length: 0\r\n\r\n").encode(),
                                  timeout=60)
                reloads.append({"t": round(now - t0, 1), "via": "http", "status": st})
                # At once again: refused by the minimum interval.
                st2 = raw_exchange(a.port, (f"POST /v1/reload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                            f"Authorization: Bearer {a.key}\r\nContent-Length: 0\r\n\r\n").encode(),
                                   timeout=60)
                reloads.append({"t": round(now - t0, 1), "via": "http_again", "status": st2})
            else:
                os.kill(a.pid, signal.SIGHUP)
                reloads.append({"t": round(now - t0, 1), "via": "sighup"})
            next_reload = now + a.reload_every
    STOP.set()
    for t in threads:
        t.join(timeout=15)
    elapsed = time.monotonic() - t0

    lat = {}
    for kind, v in LATENCY.items():
        v.sort()
        lat[kind] = {"n": len(v), **{f"p{q}_ms": round(percentile(v, q / 100) * 1e3, 3) for q in (50, 90, 99)},
                     "p99.9_ms": round(percentile(v, 0.999) * 1e3, 3), "max_ms": round(v[-1] * 1e3, 3)}
    valid_all = sorted(x for k, v in LATENCY.items() for x in v)
    if valid_all:
        lat["all_valid"] = {"n": len(valid_all), "p50_ms": round(percentile(valid_all, 0.5) * 1e3, 3),
                            "p99_ms": round(percentile(valid_all, 0.99) * 1e3, 3),
                            "p99.9_ms": round(percentile(valid_all, 0.999) * 1e3, 3),
                            "max_ms": round(valid_all[-1] * 1e3, 3)}
    kbs = [r["rss_kb"] for r in rss if r["rss_kb"]]
    totals = {}
    for kind, c in COUNTS.items():
        group = "valid" if kind in LATENCY else kind.split(":")[0]
        for st, n in c.items():
            totals.setdefault(group, {})
            totals[group][st] = totals[group].get(st, 0) + n
    server_5xx = sum(n for kind, c in COUNTS.items() for st, n in c.items()
                     if st.isdigit() and int(st) >= 500 and int(st) not in (501, 503, 505))
    report = {
        "seconds": round(elapsed, 1),
        "settings": {k: v for k, v in vars(a).items() if k not in ("key", "port", "pid", "out", "items")},
        "status_counts": COUNTS,
        "status_totals": totals,
        "valid_latency": lat,
        "monitor_health_latency_ms": {"p50": round(percentile(sorted(health_lat), 0.5) * 1e3, 3) if health_lat else None,
                                      "max": round(max(health_lat) * 1e3, 3) if health_lat else None},
        "rss": {"first_kb": kbs[0] if kbs else None, "last_kb": kbs[-1] if kbs else None,
                "min_kb": min(kbs) if kbs else None, "max_kb": max(kbs) if kbs else None, "series": rss},
        "reloads": reloads,
        "crashed": crashed,
        "hangs": hangs,
        "server_errors_5xx": server_5xx,
        "notes": NOTES,
    }
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    return 1 if crashed or hangs else 0


if __name__ == "__main__":
    raise SystemExit(main())
