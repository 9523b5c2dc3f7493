"""test_server.py: `viscnn serve` against bad requests, concurrency, its
cache, and the cost of an uncached circuit next to `viscnn importance`.

  1. Bad requests (the server under AddressSanitizer, build/asan/viscnn):
     unknown nodes and classes, malformed and missing parameters, path
     traversal (plain, encoded, double-encoded), oversized and non-image
     uploads, a 200-request burst. Each gets a 4xx JSON error naming the
     problem (or a correct answer); afterwards the server still answers and
     has printed no sanitizer report.
  2. Timing (bin/viscnn): an uncached circuit for the default model's whole
     image set, printed beside `viscnn importance` on the same set, must be
     dominated by the importance job; a cached circuit answers in < 50 ms;
     a restarted server answers from its disk cache.

Run from the repo root: /usr/bin/python3 tests/test_server.py
"""
import concurrent.futures, http.client, json, os, re, shutil, signal, socket, statistics
import subprocess, sys, threading, time, urllib.parse, zlib, struct

MODEL = "models/fashion.safetensors"
IMAGES = "data/fashion"
OUT = "build/test-server"
failed = 0


def report(ok, name, detail=""):
    global failed
    if ok:
        print(f"ok   {name}{': ' + detail if detail else ''}")
    else:
        failed += 1
        print(f"FAIL {name}: {detail}")


class Server:
    """A `viscnn serve` on a free port, stopped with SIGTERM."""

    def __init__(self, binary, cache, env=None, model=MODEL, images=IMAGES, extra=()):
        self.log = open(os.path.join(OUT, os.path.basename(cache) + ".stderr"), "w")
        self.p = subprocess.Popen([binary, "serve", model, "--images", images, "--port", "0", "--cache", cache, *extra],
                                  stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        line = self.p.stdout.readline()
        m = re.search(r"http://([^/]+):(\d+)/", line)
        if not m:
            self.p.kill()
            raise RuntimeError(f"server did not start: {line!r} (see {self.log.name})")
        self.host, self.port = m.group(1), int(m.group(2))
        self.lines = [line]
        self.ready = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.p.stdout:
            self.lines.append(line)
            if "first view" in line:
                self.ready.set()

    def request(self, method, path, body=None, headers=None, timeout=300):
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, r.getheader("Content-Type") or "", data
        finally:
            c.close()

    def get_json(self, path):
        st, ct, data = self.request("GET", path)
        return st, (json.loads(data) if ct.startswith("application/json") else None)

    def raw(self, data, timeout=30):
        """Sends bytes as they are (no client-side URL normalisation); returns status and body."""
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        try:
            s.sendall(data)
            buf = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
                head, sep, body = buf.partition(b"\r\n\r\n")
                if sep:
                    m = re.search(rb"Content-Length: (\d+)", head, re.I)
                    if m and len(body) >= int(m.group(1)):
                        break
        finally:
            s.close()
        m = re.match(rb"HTTP/1\.[01] (\d+)", buf)
        return (int(m.group(1)) if m else 0), buf.partition(b"\r\n\r\n")[2]

    def wait_job(self, job, limit=600):
        t0 = time.time()
        while time.time() - t0 < limit:
            st, j = self.get_json(f"/api/job?id={job['id']}")
            if j and j["state"] in ("done", "failed", "cancelled"):
                return j
            time.sleep(0.05)
        raise RuntimeError(f"job {job} did not finish")

    def get_following(self, path):
        """GET, following jobs; returns (status, json, [jobs])."""
        jobs = []
        for _ in range(10):
            st, j = self.get_json(path)
            if st != 202:
                return st, j, jobs
            jobs.append(self.wait_job(j["job"]))
        return st, j, jobs

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(60)
            except subprocess.TimeoutExpired:
                self.p.kill()
        self.log.close()
        return open(self.log.name).read()


def png(w, h, gray=True, seed=0):
    """A valid 8-bit PNG."""
    rows = b"".join(b"\x00" + bytes(((x * 7 + y * 13 + seed) % 256) for x in range(w * (1 if gray else 3))) for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0 if gray else 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def bad_requests():
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=0", UBSAN_OPTIONS="print_stacktrace=1",
               OMP_WAIT_POLICY="PASSIVE")
    cache = os.path.join(OUT, "cache-asan")
    shutil.rmtree(cache, ignore_errors=True)
    s = Server("build/asan/viscnn", cache, env=env)
    s.ready.wait(600)   # the first view's scores (loss) are cached: contrasts can be checked

    def expect(name, method, path, status, body=None, headers=None, in_msg=None):
        try:
            st, ct, data = s.request(method, path, body=body, headers=headers)
        except Exception as e:   # noqa: BLE001
            report(False, f"bad request: {name}", f"no answer ({e})")
            return None
        ok_status = st in status if isinstance(status, tuple) else st == status
        j = None
        if ct.startswith("application/json"):
            try:
                j = json.loads(data)
            except ValueError:
                pass
        problems = []
        if not ok_status:
            problems.append(f"status {st}, expected {status}")
        if st >= 400 and not (j and isinstance(j.get("error"), str) and j["error"]):
            problems.append(f"not a JSON error: {data[:120]!r}")
        if in_msg and (not j or in_msg not in j.get("error", "")):
            problems.append(f"message lacks {in_msg!r}")
        report(not problems, f"bad request: {name}", "; ".join(problems) if problems else f"{st} {j.get('error', '')[:90] if j else ''}")
        return j

    q = urllib.parse.quote
    expect("unknown node target", "GET", "/api/circuit?target=node:nope:1", 400, in_msg="nope")
    expect("node channel out of range", "GET", "/api/circuit?target=node:features.3:999", 400, in_msg="channel")
    expect("class out of range", "GET", "/api/circuit?target=class:99", 400, in_msg="class")
    expect("class not a number", "GET", "/api/circuit?target=class:abc", 400)
    expect("unknown metric", "GET", "/api/circuit?metric=magic", 400, in_msg="magic")
    expect("unknown mode", "GET", "/api/circuit?mode=greedy", 400, in_msg="greedy")
    expect("keep fraction > 1", "GET", "/api/circuit?mode=keep:2", 400)
    expect("threshold not a number", "GET", "/api/circuit?tn=abc", 400, in_msg="tn")
    expect("threshold > 1", "GET", "/api/circuit?te=1.5", 400, in_msg="te")
    expect("contrast with an unknown category", "GET", "/api/circuit?scores=" + q("tiger - overall"), 400, in_msg="tiger")
    expect("malformed contrast", "GET", "/api/circuit?scores=" + q("2*("), 400, in_msg="contrast")
    expect("unknown image set", "GET", "/api/circuit?set=../etc", 400, in_msg="set")
    expect("act without image", "GET", "/api/act?layer=features.3&ch=0", 400, in_msg="image")
    expect("act with image index out of range", "GET", "/api/act?image=m:99999&layer=features.3&ch=0", 400)
    expect("act with a path as image", "GET", "/api/act?image=" + q("../../etc/passwd") + "&layer=features.3&ch=0", 400)
    expect("act with an unknown upload", "GET", "/api/act?image=up:0123456789abcdef&layer=features.3&ch=0", 400)
    expect("act unknown layer", "GET", "/api/act?image=m:0&layer=nope&ch=0", 400, in_msg="nope")
    expect("act channel out of range", "GET", "/api/act?image=m:0&layer=features.3&ch=32", 400, in_msg="ch")
    expect("act channel negative", "GET", "/api/act?image=m:0&layer=features.3&ch=-1", 400)
    expect("act channel not a number", "GET", "/api/act?image=m:0&layer=features.3&ch=1e3", 400)
    expect("act missing channel", "GET", "/api/act?image=m:0&layer=features.3", 400, in_msg="ch")
    expect("edge on the input layer", "GET", "/api/edge?image=m:0&layer=input&out=0&in=0", 400, in_msg="conv")
    expect("edge in-channel out of range", "GET", "/api/edge?image=m:0&layer=features.3&out=0&in=32", 400)
    expect("kernel missing out", "GET", "/api/kernel?layer=features.3&in=0", 400, in_msg="out")
    expect("rf outside the map", "GET", "/api/rf?layer=features.6&y=7&x=0", 400)
    expect("featvis channel out of range", "GET", "/api/featvis?node=features.3:999", 400)
    expect("featvis without node or edge", "GET", "/api/featvis", 400)
    expect("featvis malformed", "GET", "/api/featvis?edge=features.3:1", 400)
    expect("unknown job", "GET", "/api/job?id=999999", 404)
    expect("job id not a number", "GET", "/api/job?id=abc", 400)
    expect("unknown endpoint", "GET", "/api/nope", 404)
    expect("wrong method on the API", "POST", "/api/model", 405)
    expect("PUT", "PUT", "/index.html", 405, body=b"x")
    expect("DELETE", "DELETE", "/api/model", 405)
    expect("projection unknown", "GET", "/api/layout?projection=tsne", 400, in_msg="tsne")
    expect("export format unknown", "GET", "/api/export?format=zip", 400)
    expect("a long query (ignored parameter)", "GET", "/api/model?x=" + "a" * 3000, 200)
    expect("URL too long", "GET", "/api/model?x=" + "a" * 20000, 414)
    # correct answers among them
    expect("valid kernel", "GET", "/api/kernel?layer=features.3&out=1&in=2", 200)
    expect("feature visualisation of a node: served (200) or queued as a job (202)", "GET", "/api/featvis?node=features.3:1", (200, 202))

    # path traversal, sent raw (no client normalises them away)
    for name, path in [("plain ../", "/../../etc/passwd"), ("in the middle", "/js/../../Makefile"),
                       ("encoded %2e%2e", "/%2e%2e/%2e%2e/etc/passwd"), ("encoded slash", "/..%2f..%2fetc%2fpasswd"),
                       ("double-encoded", "/%252e%252e/%252e%252e/etc/passwd"), ("double slash", "//etc/passwd"),
                       ("hidden file", "/.git/config"), ("NUL", "/index.html%00.png"), ("backslash", "/..%5c..%5cMakefile"),
                       ("not three.js in node_modules", "/node_modules/playwright-core/package.json"),
                       ("server source", "/../viscnn/server/server.c"), ("absolute", "/etc/passwd"),
                       ("API with ..", "/api/../../etc/passwd")]:
        st, body = s.raw(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        leaked = b"root:" in body or b"viscnn build" in body or b"#include" in body or b"[core]" in body
        try:
            j = json.loads(body)
        except ValueError:
            j = None
        report(400 <= st < 500 and j and "error" in j and not leaked, f"path traversal: {name}",
               f"{st} {j['error'][:80] if j else body[:80]!r}")

    # uploads
    expect("upload: empty body", "POST", "/api/upload", 400, body=b"")
    expect("upload: not an image", "POST", "/api/upload", 415, body=b"hello, this is text" * 10)
    expect("upload: PNG signature, garbage after", "POST", "/api/upload", (400, 415), body=b"\x89PNG\r\n\x1a\n" + b"\x00" * 200)
    big = bytearray(png(8, 8))
    expect("upload: absurd size in the header", "POST", "/api/upload", 413,
           body=bytes(big[:16]) + struct.pack(">II", 100000, 100000) + bytes(big[24:]))
    corrupt = bytearray(png(16, 16))
    corrupt[40:60] = b"\xff" * 20
    expect("upload: corrupt PNG data", "POST", "/api/upload", 400, body=bytes(corrupt))
    expect("upload: larger than 8 MiB", "POST", "/api/upload", 413, body=png(8, 8) + os.urandom(9 << 20))
    st, body = s.raw(b"POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000\r\nExpect: 100-continue\r\n\r\n")
    report(st == 413 and b"error" in body, "upload: a Content-Length of 100 GB", f"{st} {body[:80]!r}")
    expect("upload: GET instead of POST", "GET", "/api/upload", 405)
    j = expect("upload: a valid PNG", "POST", "/api/upload?name=" + q("tiny test.png"), 200, body=png(28, 28))
    if j:
        expect("the upload is usable as an input", "GET", f"/api/act?image={j['id']}&layer=features.0&ch=0", 200)
        expect("the upload is usable as an image set", "GET", f"/api/circuit?set={j['id']}", (200, 202))

    # a burst of 200 concurrent requests of every kind
    paths = ["/api/model", "/api/circuit", "/api/act?image=m:1&layer=features.3&ch=2", "/api/kernel?layer=features.6&out=3&in=1",
             "/index.html", "/api/nope", "/api/act?image=m:1&layer=nope&ch=0", "/api/edge?image=m:2&layer=features.6&out=1&in=1",
             "/api/rf?layer=features.8&y=1&x=1", "/api/scores"]
    def one(k):
        try:
            st, ct, data = s.request("GET", paths[k % len(paths)], timeout=300)
            if ct.startswith("application/json"):
                json.loads(data)
            return st
        except Exception as e:   # noqa: BLE001
            return repr(e)
    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(200) as ex:
        res = list(ex.map(one, range(200)))
    bad = [r for r in res if r not in (200, 202, 400, 404, 503)]
    wrong = [(paths[k % len(paths)], r) for k, r in enumerate(res) if r in (400, 404) and "nope" not in paths[k % len(paths)]]
    report(not bad and not wrong, "200 concurrent requests",
           f"{sum(r == 200 for r in res)} answered 200, {sum(r in (400, 404) for r in res)} 4xx (as expected), "
           f"{sum(r == 503 for r in res)} busy, in {time.time() - t0:.1f} s" if not bad and not wrong else f"{bad[:5]} {wrong[:5]}")

    st, j = s.get_json("/api/health")
    report(st == 200 and s.alive(), "the server keeps serving after all of that", f"health {st}")
    log = s.stop()
    san = [l for l in log.splitlines() if "AddressSanitizer" in l or "runtime error" in l]
    report(not san, "no AddressSanitizer/UBSan report from the server", "; ".join(san[:3]))


def timing():
    cache = os.path.join(OUT, "cache-timing")
    shutil.rmtree(cache, ignore_errors=True)
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    s = Server("bin/viscnn", cache, env=env, extra=("--no-precompute",))
    target = "class:7"
    path = f"/api/circuit?target={target}"
    t0 = time.time()
    st, j, jobs = s.get_following(path)
    wall = time.time() - t0
    imp = [x for x in jobs if x["kind"] == "importance"]
    job_s = imp[0]["seconds"] if imp else float("nan")
    t1 = time.time()
    r = subprocess.run(["bin/viscnn", "importance", MODEL, "--images", IMAGES, "--target", target,
                        "-o", os.path.join(OUT, "importance.json")], capture_output=True, text=True, env=env)
    cli = time.time() - t1
    report(st == 200 and r.returncode == 0, "uncached circuit answers after its importance job",
           f"status {st}, viscnn importance exit {r.returncode} {r.stderr.strip()[:100]}")
    print(f"# uncached circuit ({target}, {IMAGES}, 500 images): {wall:.2f} s from request to answer, "
          f"of which the importance job {job_s:.2f} s | `viscnn importance` on the same set: {cli:.2f} s (whole process)")
    report(imp and job_s >= 0.8 * wall, "an uncached circuit is dominated by the importance computation",
           f"importance job {job_s:.2f} s of {wall:.2f} s ({100 * job_s / wall:.0f}%); viscnn importance {cli:.2f} s; "
           f"job/CLI = {job_s / cli:.2f}")
    times = []
    for _ in range(25):
        t = time.perf_counter()
        st, j = s.get_json(path)
        times.append((time.perf_counter() - t) * 1e3)
    med = statistics.median(times)
    print(f"# cached circuit request: median {med:.1f} ms, min {min(times):.1f} ms, max {max(times):.1f} ms (25 requests; "
          f"server-side {j['server_ms']:.2f} ms)")
    report(st == 200 and med < 50, "a cached circuit answers in < 50 ms", f"median {med:.1f} ms")
    # while a long job runs (the faithfulness curve: 15 passes over the set),
    # requests that read the cache do not wait for it
    st, j = s.get_json(path.replace("circuit", "faithfulness"))
    busy = []
    if st == 202:
        while True:
            t = time.perf_counter()
            st2, _ = s.get_json(path)
            busy.append((time.perf_counter() - t) * 1e3)
            st3, jj = s.get_json(f"/api/job?id={j['job']['id']}")
            if jj["state"] != "running" and jj["state"] != "queued":
                break
            time.sleep(0.02)
    bmed = statistics.median(busy) if busy else float("nan")
    report(st == 202 and busy and bmed < 50, "cached circuits stay fast while a job runs",
           f"median {bmed:.1f} ms, max {max(busy):.1f} ms over {len(busy)} requests during the faithfulness job" if busy else f"status {st}")
    # a job can be cancelled; asking again starts a new one
    st, j = s.get_json("/api/circuit?target=class:3&metric=grad")
    cid = j["job"]["id"] if st == 202 else None
    st2, c = s.request("POST", f"/api/job/cancel?id={cid}")[:2] if cid else (0, None)
    fin = s.wait_job(j["job"]) if cid else {}
    st4, j2 = s.get_json("/api/circuit?target=class:3&metric=grad")
    report(st == 202 and st2 == 200 and fin.get("state") == "cancelled" and st4 == 202 and j2["job"]["id"] != cid,
           "a job can be cancelled, and asking again starts a new one", f"job {cid}: {fin.get('state')}; then job {j2.get('job', {}).get('id')}")
    s.stop()
    # a restart reuses the disk cache
    s = Server("bin/viscnn", cache, env=env, extra=("--no-precompute",))
    t = time.perf_counter()
    st, j = s.get_json(path)
    ms = (time.perf_counter() - t) * 1e3
    report(st == 200, "a restarted server answers from its disk cache", f"status {st} in {ms:.1f} ms")
    s.stop()
    shutil.rmtree(cache, ignore_errors=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    only = sys.argv[1:]   # "timing" and/or "bad": a part of the test
    for need in ("bin/viscnn", IMAGES) + (("build/asan/viscnn",) if not only or "bad" in only else ()):
        if not os.path.exists(need):
            report(False, "setup", f"{need} is missing (make, make data)")
            sys.exit(1)
    if not only or "timing" in only:
        timing()
    if not only or "bad" in only:
        bad_requests()
    shutil.rmtree(os.path.join(OUT, "cache-asan"), ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
