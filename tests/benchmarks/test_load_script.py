"""Keeps the load script (tests/benchmarks/load.py) working: a short bounded run on loopback
with every answer checked, its reading of wrk's output, and its exit when wrk is missing; and
the CI check of its ratios (tests/benchmarks/check_ratios.py) on figures given here."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import installed_beside_the_built_ins

SCRIPT = Path(__file__).with_name("load.py")
CHECK = Path(__file__).with_name("check_ratios.py")

# wrk 4.1's output with --latency and the script's Lua (its done() prints the last lines).
WRK_OUTPUT = """Running 5s test @ http://127.0.0.1:41234/graphql
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   150.21ms   40.10ms   1.02s    80.00%
    Req/Sec   105.33     20.01   150.00     70.00%
  Latency Distribution
     50%  148.50ms
     75%  170.00ms
     90%  200.00ms
     99%     1.20s
  1052 requests in 5.01s, 3.10MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:    209.98
Transfer/sec:    633.50KB
load.py answers: good 1046 bad 6 exhausted 0
load.py first bad answer: 503 {"errors":[{"message":"The database is unavailable"}]}
"""


def load_module(path: Path = SCRIPT):
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_wrk_output_is_read_with_every_kind_of_error():
    result = load_module().parse_wrk(WRK_OUTPUT)
    assert (result.rps, result.p50_ms, result.p99_ms) == (209.98, 148.5, 1200.0)
    assert (result.requests, result.seconds) == (1052, 5.01)
    assert result.socket_errors == {"connect": 0, "read": 2, "write": 0, "timeout": 1}
    assert (result.non_2xx, result.good, result.bad) == (4, 1046, 6)
    assert result.errors == 4 + 3 + 6
    assert result.first_bad.startswith("503 ")


def test_without_wrk_it_says_how_to_install_it_and_exits_2(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--rounds", "1"],
        env={**os.environ, "PATH": str(tmp_path)},  # no wrk there
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "apt-get install -y wrk" in done.stderr


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install -y wrk)")
def test_a_short_run_measures_every_target_with_every_answer_checked():
    env = {
        **os.environ,
        # The servers run in subprocesses, discovering what is installed: they get the built-ins.
        "BILLING_GATEWAY_DISABLED_PLUGINS": ",".join(installed_beside_the_built_ins()),
    }
    command = [sys.executable, str(SCRIPT), "--rounds", "1", "--seconds", "1", "--warmup", "0"]
    command += ["--scenarios", "strawberry,workers,documents,top-up", "--subscribers", "5", "--top-ups", "3"]
    command += ["--documents", "100"]
    command += ["--max-seconds", "50", "--json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["ok"] and not report["failures"]
    for name in ("raw", "gateway-sqlite", "strawberry"):
        (measured,) = report["series"][name]
        assert measured["requests"] > 0 and measured["good"] > 0
        assert measured["errors"] == 0
    assert report["figures"]["gateway-sqlite"]["ratios"]["rps"] > 0
    assert report["figures"]["memory"]["gateway_idle_mib"] > 0
    documents = report["figures"]["documents"]
    assert documents["documents"] >= 100 and documents["documents_at_tenth"] >= 10
    assert documents["rss_before_mib"] > 0 and documents["growth"] > 0
    assert all(run["errors"] == 0 and run["good"] > 0 for run in report["series"]["documents"])
    top_up = report["series"]["top-up-listened"][0]
    assert top_up["subscribers_with_every_event_in_order"] == 5
    if report["figures"]["serve_has_workers_option"]:
        assert report["series"]["gateway-2-workers"][0]["errors"] == 0
        assert report["figures"]["workers"]["ratio"] > 0
        assert report["figures"]["workers"]["median_round_ratio"] > 0
    else:
        assert any("no --workers option" in note for note in report["notes"])
    # It stopped what it started and removed its files.
    (workdir,) = re.findall(r"working in (\S+)", done.stderr)
    assert not Path(workdir).exists()
    # Each was started in a process group of its own (serve's workers in the gateway's): none is left.
    groups = {int(pid) for pid in re.findall(r"started \S+ \(pid (\d+)\)", done.stderr)}
    assert len(groups) >= 4  # raw, gateway, Strawberry, subscribers (and 2 workers if serve has them)
    left = groups & set(process_groups())
    assert not left, subprocess.run(
        ["ps", "-o", "pid,pgid,stat,etime,args", "-g", ",".join(map(str, left))],
        capture_output=True,
        text=True,
    ).stdout


POSTGRES_URL = os.environ.get("BILLING_GATEWAY_TEST_DATABASE_URL", "")


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install -y wrk)")
@pytest.mark.skipif(not POSTGRES_URL.startswith("postgresql"), reason="checkout needs PostgreSQL")
def test_a_short_checkout_run_on_one_and_two_workers_keeps_the_ledger_whole():
    """Checkout throughput, on one worker and on `serve --workers 2` over the same database, in
    a database the script creates beside the test database (it drops it at the end)."""
    env = {**os.environ, "BILLING_GATEWAY_DISABLED_PLUGINS": ",".join(installed_beside_the_built_ins())}
    command = [sys.executable, str(SCRIPT), "--rounds", "1", "--seconds", "1", "--warmup", "0"]
    command += ["--postgres", POSTGRES_URL, "--scenarios", "postgres,checkout,workers"]
    # 40 workspaces: no wrk thread comes back to one within a 1-second run (see Checkout.lua)
    command += ["--workspaces", "40", "--checkout-clients", "2", "--max-seconds", "100", "--json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["ok"] and not report["failures"]
    checkout = report["figures"]["checkout"]
    assert checkout["rps"] > 0 and checkout["checkouts_paid"] > 0
    assert not any(checkout["invariants"].values()), checkout["invariants"]
    if report["figures"]["serve_has_workers_option"]:
        (two,) = report["series"]["checkout-2-workers"]
        assert two["errors"] == 0 and two["good"] > 0
        assert report["figures"]["checkout_2_workers"]["ratio"] > 0


def process_groups() -> list[int]:
    """The process group of every process still running on the machine."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # it ended meanwhile
            continue
        state, _ppid, group = text.rsplit(")", 1)[1].split()[:3]  # after "pid (comm)"
        if state != "Z":  # a zombie has ended, and waits for its new parent (pid 1) to notice
            found.append(int(group))
    return found


def test_the_documents_scenario_names_each_document_after_its_run_thread_and_count():
    lua = load_module().documents_lua(7)
    assert "local chunk = 7" in lua
    # query D7_<thread>_<n> { d7_<thread>_<n>: plans { code } }: a name of its own per request
    assert "chunk .. '_' .. tid .. '_' .. sent" in lua
    assert "'{\"query\":\"query D' .. name .. ' { d' .. name .. ': plans { code } }\"}'" in lua
    assert 'MARKER = "\\"code\\":\\""' in lua  # every answer is checked for the plans' codes


def test_documents_is_a_default_scenario_with_its_count():
    load = load_module()
    args = load.parse_args([])
    assert "documents" in args.scenarios and args.documents == load.DEFAULT_DOCUMENTS
    assert load.parse_args(["--documents", "100000"]).documents == 100_000
    with pytest.raises(SystemExit):
        load.parse_args(["--documents", "5"])


# What load.py --json and pytest-benchmark's --benchmark-json hold, with the figures check_ratios.py reads.
def load_report(**changes: float) -> dict:
    figures = {
        "gateway-sqlite": {"ratios": {"rps": 0.30, "p50": 3.2}},
        "workers": {"ratio": 1.4, "median_round_ratio": 1.4},
        "memory": {"ratio_idle": 2.4},
        "documents": {"growth": 1.01},
    }
    for path, value in changes.items():
        *parents, key = path.split("__")
        node = figures
        for parent in parents:
            node = node[parent]
        node[key] = value
    return {"figures": figures, "failures": [], "ok": True}


def benchmark_report(core_fastest: float = 12.5e-6) -> dict:
    def bench(name: str, fastest: float) -> dict:
        return {"group": "pricing core", "name": name, "stats": {"min": fastest, "median": 2 * fastest}}

    return {
        "benchmarks": [
            bench("test_plain_decimal_omnichannel_upgrade", 5.5e-6),
            bench("test_pricing_core_omnichannel_upgrade", core_fastest),
            bench("test_pricing_core_omnichannel_upgrade_cold", 37e-6),
        ]
    }


def run_check(tmp_path: Path, load: dict | None, benchmarks: dict | None) -> subprocess.CompletedProcess:
    command = [sys.executable, str(CHECK)]
    for option, content in (("--load", load), ("--benchmarks", benchmarks)):
        if content is not None:
            path = tmp_path / f"{option[2:]}.json"
            path.write_text(json.dumps(content))
            command += [option, str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_the_check_passes_when_every_ratio_is_within_its_bound(tmp_path):
    done = run_check(tmp_path, load_report(), benchmark_report())
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(load_module(CHECK).BOUNDS)
    assert all(line.startswith("ok") for line in lines)
    assert "pricing core over plain Decimal (fastest rounds): 2.27, bound ≤ 5" in done.stdout


@pytest.mark.parametrize(
    ("changes", "core_fastest", "failed"),
    [
        (
            {"gateway-sqlite__ratios__rps": 0.010},
            12.5e-6,
            "quote rps, gateway on SQLite over the raw endpoint: 0.01, bound ≥ 0.12",
        ),
        (
            {"workers__median_round_ratio": 0.7},
            12.5e-6,
            "serve --workers 2 over 1 worker (median of the rounds): 0.7, bound ≥ 0.8",
        ),
        (
            {"memory__ratio_idle": 5.0},
            12.5e-6,
            "idle memory (VmRSS), gateway over the raw app: 5, bound ≤ 3",
        ),
        ({"documents__growth": 2.0}, 12.5e-6, "end over after the first tenth: 2, bound ≤ 1.15"),
        ({}, 30e-6, "pricing core over plain Decimal (fastest rounds): 5.45, bound ≤ 5"),
    ],
)
def test_a_regressed_ratio_fails_the_check_with_its_value_and_bound(tmp_path, changes, core_fastest, failed):
    done = run_check(tmp_path, load_report(**changes), benchmark_report(core_fastest))
    assert done.returncode == 1
    (failure,) = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert failed in failure


def test_a_ratio_not_measured_or_a_failed_load_run_fails_the_check(tmp_path):
    report = load_report()
    del report["figures"]["workers"]  # --scenarios without workers
    done = run_check(tmp_path, report, None)
    assert done.returncode == 1
    assert (
        "FAIL  quote rps, serve --workers 2 over 1 worker (median of the rounds): not measured" in done.stdout
    )
    assert "pricing core" not in done.stdout  # no --benchmarks: not checked

    report = {**load_report(), "ok": False, "failures": ["gateway-sqlite round 1: 3 non-2xx\nmore"]}
    done = run_check(tmp_path, report, None)
    assert done.returncode == 1
    assert "the load run failed its own checks" in done.stdout
    assert "gateway-sqlite round 1: 3 non-2xx" in done.stdout


def test_the_check_needs_a_readable_input(tmp_path):
    assert run_check(tmp_path, None, None).returncode == 2
    (tmp_path / "load.json").write_text("not JSON")
    done = subprocess.run(
        [sys.executable, str(CHECK), "--load", str(tmp_path / "load.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "cannot read" in done.stderr
