"""test_mpi.py: viscnn under mpirun (issue 18, docs/mpi.md). Needs OpenMPI
(mpirun) and the MPI binary build/mpi/viscnn (make test builds it when mpicc
exists); without them every case FAILs.

Checks, on the default model (models/fashion.safetensors, data/fashion) and on
torchvision resnet18 with seeded weights (build/testdata/resnet18, converted
as the parity step does) with photographs (data/photos, a list file with
labels):
  - mpirun -np 1/2/3 --oversubscribe gives byte-for-byte the JSON of the plain
    single process (importance --by-class with a contrast; circuit; project),
    at one OpenMP thread per process on both sides (docs/mpi.md: the engine's
    own results differ between thread counts by ~1e-6, the split does not);
  - a list file (--images LIST.txt) gives the same scores as the folder;
  - a bad image on a rank other than 0 makes the job exit 2 naming the file,
    with no output written, within a time limit (no hang);
  - a run killed (SIGKILL to the whole job) after its first checkpoint and
    resumed from --checkpoint DIR gives the uninterrupted run's JSON;
  - featvis --layer features.8 --all --batch 8 on 1/2/3 ranks writes the single
    process's PNGs (every node's and the sheet) and trace byte for byte, also
    with a partly filled cache; a failure on every rank or on rank 1 alone
    exits 2 naming the cause, without hanging. --featvis-only runs just these.

Protocol: one "ok ..." / "FAIL ...: reason" line per check; exit 1 on failure.
"""
import json, os, shutil, signal, subprocess, sys, time

PLAIN = "bin/viscnn"
MPIV = "build/mpi/viscnn"
FASHION = "models/fashion.safetensors"
R18 = "build/testdata/resnet18/model.safetensors"
D = "build/testdata/mpi"
failed = 0


def report(ok, text, why=""):
    global failed
    failed += not ok
    print(("ok   " if ok else "FAIL ") + text + ("" if ok else f": {why}"), flush=True)


ENV = dict(os.environ, OMP_NUM_THREADS="1")
MPIRUN = [shutil.which("mpirun") or "mpirun", "--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])


def plain(*args, timeout=600):
    return subprocess.run([PLAIN] + [str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=ENV)


def mpi(n, *args, timeout=600, env=ENV):
    return subprocess.run(MPIRUN + ["-np", str(n), MPIV] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def same_file(a, b):
    try:
        return open(a, "rb").read() == open(b, "rb").read()
    except OSError:
        return False


def first_diff(a, b):
    try:
        x, y = open(a).read(), open(b).read()
    except OSError as e:
        return str(e)
    k = next((i for i in range(min(len(x), len(y))) if x[i] != y[i]), min(len(x), len(y)))
    return f"first difference at byte {k}: {x[max(0, k - 40):k + 40]!r} vs {y[max(0, k - 40):k + 40]!r}"


if not shutil.which("mpirun") or not os.access(MPIV, os.X_OK):
    report(False, "mpi: mpirun and build/mpi/viscnn", "OpenMPI (openmpi-bin, libopenmpi-dev) and make build/mpi/viscnn needed")
    sys.exit(1)
if not os.path.isdir("data/fashion") or not os.path.isdir("data/photos"):
    report(False, "mpi: data", "data/fashion and data/photos missing (make data)")
    sys.exit(1)
shutil.rmtree(D, ignore_errors=True)
os.makedirs(D)

# ---- featvis --layer L --all: batch u (nodes 8u .. 8u+7) on rank u % N, the files of one process --
FV = ["featvis", FASHION, "--layer", "features.8", "--all", "--batch", "8", "--steps", "32"]


def same_tree(a, b):
    """Why folders a and b differ (names or bytes), or "" when every file is equal."""
    try:
        na, nb = sorted(os.listdir(a)), sorted(os.listdir(b))
    except OSError as e:
        return str(e)
    if na != nb:
        return f"files differ: {sorted(set(na) ^ set(nb))[:5]}"
    bad = [f for f in na if not same_file(os.path.join(a, f), os.path.join(b, f))]
    return f"{len(bad)} of {len(na)} files differ, e.g. {bad[:3]}" if bad else ""


def featvis_cases():
    ref, rtrace = os.path.join(D, "fv.ref"), os.path.join(D, "fv.ref.json")
    r = plain(*FV, "--no-cache", "-o", ref, "--trace", rtrace)
    if r.returncode != 0:
        report(False, "mpi: featvis --layer features.8 --all --batch 8: single process", r.stderr[-300:])
        return
    nfiles = len(os.listdir(ref))
    for n in (1, 2, 3):
        out, trace = os.path.join(D, f"fv.np{n}"), os.path.join(D, f"fv.np{n}.json")
        t0 = time.time()
        try:
            r = mpi(n, *FV, "--no-cache", "-o", out, "--trace", trace, timeout=300)
            why = r.stderr[-400:] if r.returncode else same_tree(ref, out) or (
                "" if same_file(rtrace, trace) else "the trace JSON differs")
        except subprocess.TimeoutExpired:
            why = "still running after 300 s (hangs)"
        report(not why, f"mpi: featvis --layer features.8 --all --batch 8 --steps 32: mpirun -np {n} writes the single process's "
                        f"{nfiles} PNGs (per node and the sheet) and trace byte for byte ({time.time() - t0:.1f} s)", why)
    # a cache that holds two thirds of the pictures: each rank reads its cached
    # ones and optimises the rest of each batch; the same files as one process
    # with the same cache (what is cached changes a batch's members, and so
    # the engine's rounding, in one process as on N ranks)
    cache = os.path.join(D, "fv.cache")
    r = plain(*FV, "--cache", cache, "-o", os.path.join(D, "fv.fill"))
    pngs = sorted(f for f in os.listdir(cache) if f.endswith(".png")) if r.returncode == 0 else []
    for f in pngs[::3]:
        os.remove(os.path.join(cache, f))
        os.remove(os.path.join(cache, f[:-4] + ".json"))
    shutil.copytree(cache, cache + "2")
    cref, out = os.path.join(D, "fv.cached.ref"), os.path.join(D, "fv.cached")
    r1 = plain(*FV, "--cache", cache, "-o", cref)
    r = mpi(3, *FV, "--cache", cache + "2", "-o", out, timeout=300)
    hits = len(pngs) - len(pngs[::3])
    why = (r1.stderr + r.stderr)[-400:] if r.returncode or r1.returncode else same_tree(cref, out) or (
        "" if f"{hits} from the cache" in r.stderr else f"no '{hits} from the cache' in {r.stderr[-300:]!r}")
    report(bool(pngs) and not why, f"mpi: featvis -np 3 with {hits} of {len(pngs)} pictures cached: the single process's "
                                   f"files with the same cache", why or "filling the cache failed")
    # every rank fails (-o under a regular file), and rank 1 alone fails (node
    # 9, in batch 1, has a folder for its file): exit 2 naming the cause, no sheet, no hang
    plainfile = os.path.join(D, "fv.afile")
    open(plainfile, "w").close()
    blocked = os.path.join(D, "fv.blocked")
    os.makedirs(os.path.join(blocked, "features.8_9.png"))
    for label, out, name in (("-o under a regular file (every rank)", os.path.join(plainfile, "sub"), plainfile + "/sub"),
                             ("node 9's file is a folder (rank 1 alone)", blocked, "features.8_9.png")):
        t0 = time.time()
        try:
            r = mpi(2, *FV, "--no-cache", "-o", out, timeout=120)
            ok = r.returncode == 2 and name in r.stderr and not os.path.exists(os.path.join(out, "features.8.png"))
            why = f"status {r.returncode}, stderr {r.stderr[-300:]!r}"
        except subprocess.TimeoutExpired:
            ok, why = False, "still running after 120 s (hangs)"
        report(ok, f"mpi: featvis -np 2, {label}: exit 2 naming it, no sheet ({time.time() - t0:.1f} s)", why)


featvis_cases()
if "--featvis-only" in sys.argv[1:]:   # (while developing: python3 tests/test_mpi.py --featvis-only)
    sys.exit(1 if failed else 0)

# resnet18 as the parity step converts it (reused when already there)
if not os.path.exists(R18):
    d = os.path.dirname(R18)
    shutil.rmtree(d, ignore_errors=True)
    r = subprocess.run(["/usr/bin/python3", "tools/torch_dump.py", "--torchvision", "resnet18", "--seed", "0",
                        "--batch", "2", "-o", d], capture_output=True, text=True, timeout=900)
    if r.returncode == 0:
        open(os.path.join(d, "done"), "w").close()
    report(r.returncode == 0, "mpi: convert resnet18 (tools/torch_dump.py)", r.stderr[-300:])

# resnet18's images: eight photographs in a list file, labelled animal / object
photos = sorted(os.listdir("data/photos"))
animals = [p for p in photos if any(k in p for k in ("dog", "eagle", "giraffe", "chelsea"))][:4]
objects = [p for p in photos if any(k in p for k in ("camera", "coins", "moon", "rocket"))][:4]
plist = os.path.join(D, "photos.txt")
with open(plist, "w") as f:
    f.write("# path <TAB> label, relative to this file's folder\n")
    for p in animals + objects:
        f.write(f"../../../data/photos/{p}\t{'animal' if p in animals else 'object'}\n")

# ---- parity: N ranks vs the plain single process -------------------------------------------------
jobs = [
    ("fashion importance --by-class --contrast", FASHION,
     ["importance", "--images", "data/fashion", "--by-class", "--contrast", "sneaker - overall"], "json"),
    ("fashion circuit --contrast --mode keep:0.1", FASHION,
     ["circuit", "--images", "data/fashion", "--contrast", "bag - overall", "--mode", "keep:0.1"], "json"),
    ("fashion circuit --iterative 2 --faithfulness (rounds on all ranks, faithfulness on rank 0)", FASHION,
     ["circuit", "--images", "data/fashion", "--category", "bag", "--mode", "keep:0.2", "--iterative", "2",
      "--faithfulness"], "json"),
    ("fashion project mds", FASHION, ["project", "--images", "data/fashion", "--projection", "mds"], "json"),
    ("resnet18 photos importance --by-class --contrast (list file)", R18,
     ["importance", "--images", plist, "--by-class", "--contrast", "animal - object", "--batch", "2"], "json"),
]
for label, model, args, ext in jobs:
    if not os.path.exists(model):
        report(False, f"mpi: {label}", f"{model} missing")
        continue
    tag = label.split()[0] + "_" + args[0] + str(len(args))
    ref = os.path.join(D, f"{tag}.ref.{ext}")
    r = plain(args[0], model, *args[1:], "-o", ref)
    if r.returncode != 0:
        report(False, f"mpi: {label}: single process", r.stderr[-300:])
        continue
    for n in (1, 2, 3):
        out = os.path.join(D, f"{tag}.np{n}.{ext}")
        t0 = time.time()
        r = mpi(n, args[0], model, *args[1:], "-o", out)
        ok = r.returncode == 0 and same_file(ref, out)
        report(ok, f"mpi: {label}: mpirun -np {n} writes the single process's JSON byte for byte ({time.time() - t0:.1f} s)",
               r.stderr[-400:] if r.returncode else first_diff(ref, out))

# a list file gives the folder's scores
flist = os.path.join(D, "fashion.txt")
with open(flist, "w") as f:
    for cat in sorted(os.listdir("data/fashion")):
        for img in sorted(os.listdir(os.path.join("data/fashion", cat))):
            f.write(f"{os.path.abspath(os.path.join('data/fashion', cat, img))} {cat}\n")
a, b = os.path.join(D, "folder.json"), os.path.join(D, "list.json")
r1 = plain("importance", FASHION, "--images", "data/fashion", "--by-class", "-o", a)
r2 = mpi(2, "importance", FASHION, "--images", flist, "--by-class", "-o", b)
ok = r1.returncode == 0 and r2.returncode == 0
if ok:
    ja, jb = json.load(open(a)), json.load(open(b))
    ja.pop("source"), jb.pop("source")
    ok = ja == jb
report(ok, "mpi: --images LIST.txt (labels as categories) on 2 ranks = the class folders on one process",
       (r1.stderr + r2.stderr)[-300:] or "scores differ")

# ---- a bad image on a rank other than 0 ----------------------------------------------------------
# Units are the batches of each category in order (--batch 8: seven per
# category of 50 or 51 images); unit u goes to rank u % N. The broken file
# sorts last in category k, so it is in unit 7k + 6: k is chosen so that this
# is rank 1.
for n in (2, 3):
    bad = os.path.join(D, f"bad{n}")
    shutil.copytree("data/fashion", bad)
    cats = sorted(os.listdir(bad))
    # category k gets the broken image as its 51st (last) image: unit 7*k + 6
    k = next(k for k in range(len(cats)) if (7 * k + 6) % n == 1)
    broken = os.path.join(bad, cats[k], "zzz_broken.png")
    with open(broken, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n not really")
    out = os.path.join(D, f"bad{n}.json")
    t0 = time.time()
    try:
        r = mpi(n, "importance", FASHION, "--images", bad, "--by-class", "-o", out, timeout=120)
        ok = r.returncode == 2 and broken in r.stderr and not os.path.exists(out)
        why = f"status {r.returncode}, stderr {r.stderr[-300:]!r}"
    except subprocess.TimeoutExpired:
        ok, why = False, "still running after 120 s (hangs)"
    report(ok, f"mpi: -np {n}, a broken image on rank 1 ({cats[k]}/zzz_broken.png): exit 2 naming the file, no output "
               f"({time.time() - t0:.1f} s)", why)

# rank 0 alone fails (its output cannot be written): MPI_Abort ends the job with status 2
out = os.path.join(D, "no-such-folder", "x.json")
try:
    r = mpi(2, "importance", FASHION, "--images", "data/fashion", "-o", out, timeout=120)
    ok, why = r.returncode == 2 and out in r.stderr, f"status {r.returncode}, stderr {r.stderr[-300:]!r}"
except subprocess.TimeoutExpired:
    ok, why = False, "still running after 120 s (hangs)"
report(ok, "mpi: -np 2, rank 0 cannot write -o: exit 2 naming the file", why)

# ---- kill and resume -----------------------------------------------------------------------------
def kill_and_resume(label, n, model, args, every, units):
    half = units // 2
    ref = os.path.join(D, f"ck_{label}.ref.json")
    r = plain(*args[:1], model, *args[1:], "-o", ref)
    if r.returncode != 0:
        report(False, f"mpi: kill and resume {label}: uninterrupted run", r.stderr[-300:])
        return
    ck = os.path.join(D, f"ck_{label}")
    out = os.path.join(D, f"ck_{label}.json")
    shutil.rmtree(ck, ignore_errors=True)   # a checkpoint or output left by an earlier run would be resumed or seen
    if os.path.exists(out):
        os.unlink(out)
    cmd = MPIRUN + ["-np", str(n), MPIV, args[0], model] + args[1:] + ["--checkpoint", ck, "--checkpoint-every",
                                                                        str(every), "-o", out]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, start_new_session=True)
    files = [os.path.join(ck, f"rank-{q}-of-{n}.ckpt") for q in range(n)]

    def nexts():
        v = []
        for f in files:
            try:
                v.append(int(open(f, "rb").read(4096).split(b"\nnext ")[1].split()[0]))
            except (OSError, IndexError, ValueError):
                v.append(None)
        return v

    t0 = time.time()
    # kill once every rank's checkpoint is past half of the units
    while p.poll() is None and time.time() - t0 < 300:
        v = nexts()
        if None not in v and min(v) >= half:
            break
        time.sleep(0.005)
    # the ranks first (mpirun may have put them in a process group of their
    # own), then mpirun: SIGKILL, no clean-up
    subprocess.run(["pkill", "-KILL", "-f", "--", "--checkpoint " + ck], check=False)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    time.sleep(0.5)
    v = nexts()
    # (a rank may have finished all its units and be waiting for the others)
    killed = not os.path.exists(out) and None not in v and half <= min(v) < units
    report(killed, f"mpi: kill and resume {label}: SIGKILL with every rank's checkpoint past half of the {units} units "
                   f"(ranks at {v})", "the run finished before the kill" if os.path.exists(out) else f"checkpoints {v}")
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
    ok = r.returncode == 0 and "resuming from" in r.stderr and same_file(ref, out)
    report(ok, f"mpi: kill and resume {label}: the resumed run writes the uninterrupted run's JSON byte for byte",
           r.stderr[-300:] if r.returncode or "resuming" not in r.stderr else first_diff(ref, out))


kill_and_resume("resnet18_np2", 2, R18, ["importance", "--images", plist, "--by-class", "--batch", "1"], 1, 8)
kill_and_resume("fashion_np3", 3, FASHION, ["importance", "--images", "data/fashion", "--by-class", "--batch", "2",
                                            "--contrast", "coat - overall"], 2, 250)

# a checkpoint of another job is refused, naming the file
ck = os.path.join(D, "ck_fashion_np3")
r = mpi(3, "importance", FASHION, "--images", "data/fashion", "--metric", "act", "--batch", "2", "--checkpoint", ck,
        "-o", os.path.join(D, "other.json"))
report(r.returncode == 2 and "written by a different job" in r.stderr and "rank-0-of-3.ckpt" in r.stderr,
       "mpi: --checkpoint DIR of another job (another metric): exit 2 naming the file", r.stderr[-300:])

shutil.rmtree(D, ignore_errors=True)   # ~400 MB of by-class JSON: build/ stays small (written again next run)
sys.exit(1 if failed else 0)
