"""AOTInductor prototype for trtpipe issue 13: compile a torch "engine" once, load it elsewhere without compiling.

    python aoti_probe.py all   [--device cpu|cuda] [--workdir DIR]   # everything below, in fresh processes
    python aoti_probe.py dims      # which batch Dim spellings export/run for a range that includes batch 1
    python aoti_probe.py compile --dtype fp32|fp16 --pkg PATH      # export + aoti_compile_and_package, timed
    python aoti_probe.py load    --dtype fp32|fp16 --pkg PATH      # NEW process: aoti_load_package, run b=1,3,32
    AOTI_RUNTIME_CHECK_INPUTS=1 python aoti_probe.py probe --pkg PATH  # which batches the package really accepts
    python aoti_probe.py diag --device cuda --pkg PATH   # segfault triage: ldd/readelf of the .so, LD_DEBUG, gdb
    python aoti_probe.py hardcoded # a model that hard-codes its batch (reshape(2,-1)/view(2,-1)) vs a dynamic batch

`load` also takes --variant (GPU diagnosis of the 2.11 segfault; one variant per process):
    plain       torch._inductor.aoti_load_package(path)
    cuda_init   torch.cuda.init() + torch.empty(1, device="cuda") before loading
    dev0        aoti_load_package(path, device_index=0)
    single      aoti_load_package(path, run_single_threaded=True)
    loader      torch._C._aoti.AOTIModelPackageLoader(path, "model", False, 1, 0) directly
    abspath     plain, but with an absolute path and cwd changed to /
    graph       run_single_threaded=True, then torch.cuda.graph capture of one call at batch 8 and replays (CUDA only)
    graph_mt    the same capture with the default (multi-threaded) runner: expected to fail (pytorch#148601)
Weights: the state dict is saved next to the package, so the load process rebuilds the eager reference itself.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import subprocess
import sys
import time
from pathlib import Path

faulthandler.enable()  # a segfault prints the Python stack instead of dying silently

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.export import Dim  # noqa: E402

BATCHES = (1, 3, 32)
MAX_BATCH = 32


class SmallConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        x = self.pool(self.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(x, 1))


class HardcodedBatch(SmallConvNet):
    def __init__(self, how: str):
        super().__init__()
        self.how = how

    def forward(self, x):
        x = self.pool(self.relu(self.bn(self.conv(x))))
        x = x.reshape(2, -1) if self.how == "reshape" else x.view(2, -1)
        return self.fc(x)


def make_model(dtype: torch.dtype, device: str, cls=SmallConvNet, *a) -> nn.Module:
    torch.manual_seed(0)
    m = cls(*a)
    with torch.no_grad():  # non-trivial BN statistics, so BN folding is actually checked
        m.bn.running_mean.uniform_(-0.5, 0.5)
        m.bn.running_var.uniform_(0.5, 2.0)
    return m.eval().to(device=device, dtype=dtype)


def inputs(batch: int, dtype, device) -> torch.Tensor:
    g = torch.Generator().manual_seed(batch)
    return torch.randn(batch, 3, 32, 32, generator=g).to(device=device, dtype=dtype)


DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def cmd_compile(a) -> dict:
    dtype, dev = DTYPES[a.dtype], a.device
    model = make_model(dtype, dev)
    pkg = Path(a.pkg)
    pkg.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), pkg.with_suffix(".state.pt"))
    batch = Dim("batch", min=1, max=MAX_BATCH)
    t0 = time.perf_counter()
    with torch.no_grad():
        ep = torch.export.export(model, (inputs(a.example_batch, dtype, dev),), dynamic_shapes={"x": {0: batch}})
    t1 = time.perf_counter()
    path = torch._inductor.aoti_compile_and_package(ep, package_path=str(pkg))
    t2 = time.perf_counter()
    rng = {str(k): str(v) for k, v in ep.range_constraints.items()}
    out = {"step": "compile", "dtype": a.dtype, "device": dev, "export_s": round(t1 - t0, 2),
           "aoti_compile_s": round(t2 - t1, 2), "example_batch": a.example_batch, "package": path, "package_bytes": os.path.getsize(path),
           "range_constraints": rng, "torch": torch.__version__}
    print(json.dumps(out))
    return out


def cmd_load(a) -> dict:
    dtype, dev = DTYPES[a.dtype], a.device
    pkg = os.path.abspath(a.pkg)
    v = a.variant
    if v == "cuda_init":
        torch.cuda.init()
        torch.empty(1, device="cuda")
    if v == "abspath":
        os.chdir("/")
    t0 = time.perf_counter()
    if v == "dev0":
        compiled = torch._inductor.aoti_load_package(pkg, device_index=0)
    elif v in ("single", "graph"):
        compiled = torch._inductor.aoti_load_package(pkg, run_single_threaded=True)
    elif v == "loader":
        raw = torch._C._aoti.AOTIModelPackageLoader(pkg, "model", False, 1, 0 if dev == "cuda" else -1)
        compiled = lambda x: raw.run([x])  # noqa: E731  (flat inputs/outputs, no pytree)
    else:
        compiled = torch._inductor.aoti_load_package(pkg)
    t1 = time.perf_counter()
    model = make_model(dtype, dev)
    model.load_state_dict(torch.load(Path(pkg).with_suffix(".state.pt")))
    errs, run_ms = {}, {}
    with torch.no_grad():
        for b in BATCHES:
            x = inputs(b, dtype, dev)
            ref = model(x).float()
            got = compiled(x)
            got = got[0] if isinstance(got, (list, tuple)) else got
            errs[b] = float((got.float() - ref).abs().max())
            sync(dev)
            s = time.perf_counter()
            for _ in range(10):
                compiled(x)
            sync(dev)
            run_ms[b] = round((time.perf_counter() - s) / 10 * 1e3, 3)
        try:  # outside the profile: only checked when AOTI_RUNTIME_CHECK_INPUTS=1 (see `probe`)
            compiled(inputs(MAX_BATCH + 1, dtype, dev))
            out_of_range = "ran (no check)"
        except Exception as e:  # noqa: BLE001
            out_of_range = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    cuda_graph = None
    if dev == "cuda" and v in ("graph", "graph_mt"):  # capture the package's run at a fixed batch, replay on new data
        try:
            static_x = inputs(8, dtype, dev)
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s), torch.no_grad():
                for _ in range(3):
                    compiled(static_x)
            torch.cuda.current_stream().wait_stream(s)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g), torch.no_grad():
                static_y = compiled(static_x)
            static_y = static_y[0] if isinstance(static_y, (list, tuple)) else static_y
            errs_g = []
            for seed in (100, 101):
                new = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(seed)).to(dev, dtype)
                static_x.copy_(new)
                g.replay()
                torch.cuda.synchronize()
                with torch.no_grad():
                    errs_g.append(float((static_y.float() - model(new).float()).abs().max()))
            cuda_graph = {"captured": True, "replay_max_abs_err": errs_g}
        except Exception as e:  # noqa: BLE001
            cuda_graph = {"captured": False, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
    out = {"step": "load", "variant": v, "dtype": a.dtype, "device": dev, "load_s": round(t1 - t0, 3), "cuda_graph": cuda_graph,
           "max_abs_err_vs_eager": errs, "run_ms_per_call": run_ms, "batch_33": out_of_range,
           "inductor_compiles_in_this_process": dict(torch._dynamo.utils.counters["inductor"]),
           "torch": torch.__version__}
    print(json.dumps(out))
    return out


def cmd_probe(a) -> None:
    """Which batches does the compiled package accept? Run with AOTI_RUNTIME_CHECK_INPUTS=1 (read once per process):
    the generated code then checks the input against the range Inductor compiled for, which can be narrower than
    the Dim range export was given (lowering adds guards)."""
    assert os.environ.get("AOTI_RUNTIME_CHECK_INPUTS") == "1"
    dtype, dev = DTYPES[a.dtype], a.device
    compiled = torch._inductor.aoti_load_package(os.path.abspath(a.pkg))
    res = {}
    for b in (1, 2, 15, 16, 32, 33):
        try:
            compiled(inputs(b, dtype, dev))
            res[b] = "ok"
        except Exception as e:  # noqa: BLE001
            res[b] = str(e).strip().splitlines()[-1][:120]
    print(json.dumps({"step": "probe AOTI_RUNTIME_CHECK_INPUTS=1", "dtype": a.dtype, "accepts": res}))


def cmd_diag(a) -> None:
    """GPU segfault triage in one go (run after `compile`): environment, what the package's .so links against,
    and a `load` child run with LD_DEBUG=libs (+ gdb backtrace when gdb exists). Read the child's last stderr lines:
    AOTI's C shim prints the real C++ error ("Exception in aoti_torch: ...") just before a crash."""
    import shutil
    import tempfile
    import zipfile

    import torch.utils.cpp_extension as ce

    pkg = os.path.abspath(a.pkg)
    print(json.dumps({"torch": torch.__version__, "torch.version.cuda": torch.version.cuda,
                      "cuda_available": torch.cuda.is_available(), "CUDA_HOME(cpp_extension)": ce.CUDA_HOME,
                      "env CUDA_HOME": os.environ.get("CUDA_HOME"), "nvcc": shutil.which("nvcc"),
                      "LD_LIBRARY_PATH": os.environ.get("LD_LIBRARY_PATH"), "cwd": os.getcwd(),
                      "package_metadata": _package_metadata(pkg)}, indent=1))
    tmp = tempfile.mkdtemp(prefix="aoti_diag_")
    with zipfile.ZipFile(pkg) as z:
        z.extractall(tmp)
    for so in sorted(Path(tmp).rglob("*.so")):
        print(f"--- {so.relative_to(tmp)}")
        for cmd in (["ldd", str(so)], ["readelf", "-d", str(so)]):
            r = subprocess.run(cmd, capture_output=True, text=True)
            keep = [ln for ln in r.stdout.splitlines()
                    if any(k in ln for k in ("cuda", "torch", "c10", "not found", "RPATH", "RUNPATH", "NEEDED"))]
            print(f"$ {' '.join(cmd[:-1])} <so>\n" + "\n".join(keep))
    child = [sys.executable, os.path.abspath(__file__), "load", "--pkg", pkg, "--dtype", a.dtype,
             "--device", a.device, "--variant", "plain"]
    r = subprocess.run(child, capture_output=True, text=True, env={**os.environ, "LD_DEBUG": "libs"})
    libs = sorted({ln.split("calling init:")[-1].strip() for ln in r.stderr.splitlines() if "calling init:" in ln
                   and any(k in ln for k in ("cuda", "torch", "c10", "aotinductor", "nvrtc", "/tmp/"))})
    print(f"--- load child rc={r.returncode}{' (SIGSEGV)' if r.returncode == -11 else ''}; libraries it initialised:")
    print("\n".join(libs))
    tail = [ln for ln in r.stderr.splitlines() if not ln.lstrip().startswith(tuple("0123456789")) or "Exception" in ln]
    print("--- child stderr (without LD_DEBUG lines), last 40 lines:\n" + "\n".join(tail[-40:]) + "\n" + r.stdout[-2000:])
    if r.returncode != 0 and shutil.which("gdb"):
        g = subprocess.run(["gdb", "-batch", "-ex", "run", "-ex", "bt 25", "--args", *child], capture_output=True, text=True)
        print("--- gdb backtrace:\n" + "\n".join(g.stdout.splitlines()[-40:]))


def _package_metadata(pkg: str) -> dict:
    try:
        return dict(torch._C._aoti.AOTIModelPackageLoader.load_metadata_from_package(pkg, "model"))
    except Exception as e:  # noqa: BLE001
        return {"error": str(e)[:200]}


def try_export(model, example_batch: int, dim, dev="cpu"):
    x = inputs(example_batch, torch.float32, dev)
    try:
        with torch.no_grad():
            ep = torch.export.export(model, (x,), dynamic_shapes={"x": {0: dim}})
        return ep, {str(k): str(v) for k, v in ep.range_constraints.items()}
    except Exception as e:  # noqa: BLE001
        return None, f"{type(e).__name__}: {e}"


def cmd_dims(a) -> None:
    model = make_model(torch.float32, "cpu")
    cases = {
        "Dim('batch', min=1, max=32), example b=4": (lambda: Dim("batch", min=1, max=32), 4),
        "Dim('batch', min=1, max=32), example b=1": (lambda: Dim("batch", min=1, max=32), 1),
        "Dim('batch', min=2, max=32), example b=4": (lambda: Dim("batch", min=2, max=32), 4),
        "Dim.DYNAMIC, example b=4": (lambda: Dim.DYNAMIC, 4),
        "Dim.AUTO, example b=4": (lambda: Dim.AUTO, 4),
        "Dim.DYNAMIC(min=1,max=32), example b=1": (lambda: Dim.DYNAMIC(min=1, max=32), 1),
    }
    for name, (mk, eb) in cases.items():
        ep, rng = try_export(model, eb, mk())
        line = {"dim": name, "range_constraints": rng}
        if ep is not None:  # does the exported program accept batch 1 and 32? (input guards)
            ran = {}
            for b in (1, 32):
                try:
                    ep.module()(inputs(b, torch.float32, "cpu"))
                    ran[b] = "ok"
                except Exception as e:  # noqa: BLE001
                    ran[b] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
            line["ep.module() runs"] = ran
        print(json.dumps(line))


def cmd_hardcoded(a) -> None:
    import logging

    logging.getLogger("torch._subclasses.fake_tensor").setLevel(logging.CRITICAL)  # the meta-kernel traceback
    for how in ("reshape", "view"):
        model = make_model(torch.float32, "cpu", HardcodedBatch, how)
        ep, res = try_export(model, 2, Dim("batch", min=1, max=32))
        print(f"--- x.{how}(2, -1), batch Dim(min=1,max=32), example batch 2 ---")
        print(res if ep is None else f"EXPORTED (unexpected): {res}")
        ep, res = try_export(model, 4, Dim("batch", min=1, max=32))
        print(f"--- x.{how}(2, -1), batch Dim(min=1,max=32), example batch 4 ---")
        print(res if ep is None else f"EXPORTED: {res}")
        ep, res = try_export(model, 2, Dim.AUTO)
        print(f"--- x.{how}(2, -1), Dim.AUTO, example batch 2 ---")
        print(res if ep is None else f"EXPORTED, batch specialised: range_constraints={res}")


def sub(args: list[str], cwd=None, env=None) -> int:
    pre = " ".join(f"{k}={v}" for k, v in (env or {}).items())
    print(f"\n$ {pre} python {Path(__file__).name} {' '.join(args)}", flush=True)
    return subprocess.run([sys.executable, os.path.abspath(__file__), *args], cwd=cwd,
                          env={**os.environ, **(env or {})}).returncode


def cmd_all(a) -> None:
    wd = Path(a.workdir)
    wd.mkdir(parents=True, exist_ok=True)
    common = ["--device", a.device]
    sub(["dims"])
    sub(["hardcoded"])
    for dt in ("fp32", "fp16"):
        pkg = str(wd / f"convnet_{dt}.pt2")
        if sub(["compile", "--dtype", dt, "--pkg", pkg, *common]) == 0:
            variants = ("plain",) if a.device == "cpu" else (
                "plain", "cuda_init", "dev0", "single", "loader", "abspath", "graph", "graph_mt")
            for v in variants:  # each in its own process: a segfault kills only that one
                rc = sub(["load", "--dtype", dt, "--pkg", pkg, "--variant", v, *common], cwd=str(wd))
                if rc != 0:
                    print(f"load variant {v}: exit code {rc}" + (" (SIGSEGV)" if rc == -11 else ""))
            sub(["probe", "--dtype", dt, "--pkg", pkg, *common], env={"AOTI_RUNTIME_CHECK_INPUTS": "1"})


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["all", "dims", "compile", "load", "probe", "diag", "hardcoded"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="fp32", choices=list(DTYPES))
    p.add_argument("--pkg", default="/tmp/aoti-proto/convnet_fp32.pt2")
    p.add_argument("--variant", default="plain", choices=["plain", "cuda_init", "dev0", "single", "loader", "abspath", "graph", "graph_mt"])
    p.add_argument("--workdir", default="/tmp/aoti-proto")
    p.add_argument("--example-batch", type=int, default=4)
    a = p.parse_args()
    {"all": cmd_all, "dims": cmd_dims, "compile": cmd_compile, "load": cmd_load, "probe": cmd_probe, "diag": cmd_diag, "hardcoded": cmd_hardcoded}[a.cmd](a)


if __name__ == "__main__":
    main()
