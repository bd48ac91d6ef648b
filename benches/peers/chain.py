"""The real-chain section of the peer comparison: inferload, Triton's perf_analyzer and Artillery
at the same arrival rates against the testbed (NGINX -> Envoy -> MLServer on 127.0.0.1).

The testbed is started with testbed/up (idempotent) and left running; testbed/down stops it.
Generators run pinned to CPU 1 like in the other sections, but the chain itself is not pinned,
so it shares both CPUs with the generator, as it would on a small host.
"""

import csv
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from compare import REPO, Tools, measure

HOST = "ml-api.local"
PREFIX = "/financial-inference"
MODEL = "financial-ab-test-experiment"
SELDON_MODEL = MODEL + ".experiment"
PAYLOAD = REPO / "scenarios" / "payloads" / "financial-1x10x35.json"


def per_second(rate: str) -> float:
    number, unit = rate.split("/")
    return float(number) / (60.0 if unit.startswith("min") else 1.0)


class Chain:
    def __init__(self, bench):
        self.bench = bench
        self.args = bench.args
        self.tmp = bench.tmp / "chain"
        self.tmp.mkdir()
        self.port = int(os.environ.get("INFERLOAD_TB_NGINX_PORT", "18080"))
        self.grpc_port = int(os.environ.get("INFERLOAD_TB_NGINX_GRPC_PORT", "18081"))
        self.base = f"http://127.0.0.1:{self.port}"

    def skip(self, tool, case, reason):
        print(f"  chain: {tool} not measured: {reason}", flush=True)
        self.bench.rows.append({"section": "chain", "tool": tool, "case": case, "skipped": reason})

    def run(self):
        up = subprocess.run([str(REPO / "testbed" / "up")], capture_output=True, text=True)
        (self.bench.out / "chain").mkdir(exist_ok=True)
        (self.bench.out / "chain" / "testbed-up.log").write_text(up.stdout + up.stderr)
        if up.returncode != 0:
            self.skip("all", "-", f"testbed/up failed (exit {up.returncode}); see chain/testbed-up.log")
            return
        scenario = self.tmp / "chain.toml"
        scenario.write_text(
            "[target]\n"
            f'url = "{self.base}{PREFIX}"\n'
            f'model = "{MODEL}"\n'
            f'host = "{HOST}"\n'
            'timeout = "10s"\n\n'
            "[target.headers]\n"
            f'seldon-model = "{SELDON_MODEL}"\n\n'
            "[payload]\n"
            f'file = "{PAYLOAD}"\n'
        )
        perf_available = self.perf_analyzer_problem()
        if perf_available is None:
            self.perf_analyzer_rest_probe()
            perf_available = self.perf_analyzer_grpc_probe()
        seconds = self.args.chain_seconds
        for rate in self.args.chain_rates.split(","):
            rps = per_second(rate)
            case = rate.replace("/", "per")
            for rep in range(self.args.reps):
                command, out_dir = self.bench.tools.inferload_cmd(
                    self.base + PREFIX, seconds, ["--rate", rate, "--connections", "16"], scenario=scenario
                )
                row = self.bench.run_one("chain", "inferload", case, rep, command, None, seconds, out_dir)
                self.set_rate(row, rps, row.get("rps"))
                if perf_available is None:
                    self.perf_analyzer(case, rep, rps, seconds)
                self.artillery(case, rep, rps, seconds)
            if perf_available is not None:
                self.skip("perf_analyzer", case, perf_available)

    def set_rate(self, row, target, achieved):
        row["target_rps"] = target
        if achieved:
            row["achieved_rps"] = achieved
            row["rate_error_pct"] = round((achieved / target - 1) * 100, 3)
        (self.bench.out / "results.json").write_text(json.dumps(self.bench.rows, indent=1))

    # -- perf_analyzer -------------------------------------------------------------------------
    def perf_analyzer_problem(self):
        """Returns why perf_analyzer cannot measure this chain, or None when it can."""
        binary = self.args.perf_analyzer
        if not binary or not Path(binary).exists():
            return "perf_analyzer is not installed (tritonclient[all]==2.40.0 did not install it)"
        probe = subprocess.run([binary, "--version"], capture_output=True, text=True, env=self.perf_analyzer_env())
        if probe.returncode not in (0, 1) or "error while loading shared libraries" in probe.stderr:
            return f"perf_analyzer does not start: {probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else probe.returncode}"
        return None

    def perf_analyzer_env(self):
        env = dict(os.environ)
        if self.args.perf_analyzer_libs:
            env["LD_LIBRARY_PATH"] = self.args.perf_analyzer_libs + ":" + env.get("LD_LIBRARY_PATH", "")
        return env

    def perf_analyzer_input(self):
        data = self.tmp / "perf-input.json"
        if not data.exists():
            tensor = json.loads(PAYLOAD.read_text())["inputs"][0]
            data.write_text(json.dumps({"data": [{tensor["name"]: {"content": tensor["data"], "shape": tensor["shape"][1:]}}]}))
        return data

    def perf_analyzer_rest_probe(self):
        """Tries perf_analyzer over REST once and records why it stops there."""
        command = [
            self.args.perf_analyzer, "-m", MODEL, "-u", f"127.0.0.1:{self.port}{PREFIX}", "-i", "http",
            "-H", f"Host: {HOST}", "-H", f"seldon-model: {SELDON_MODEL}", "--request-rate-range", "10",
            "--input-data", str(self.perf_analyzer_input()), "--measurement-interval", "1000", "--max-trials", "1",
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=self.perf_analyzer_env())
        (self.bench.out / "chain" / "perf_analyzer-rest-probe.log").write_text(
            " ".join(command) + "\n" + result.stdout + result.stderr
        )
        if result.returncode != 0:
            message = (result.stdout + result.stderr).strip().splitlines()[-1]
            self.skip("perf_analyzer (REST)", "all", f"exit {result.returncode}: {message}")

    def perf_analyzer_grpc_probe(self):
        """Tries perf_analyzer over gRPC once; returns why it stops there, or None."""
        command = [
            self.args.perf_analyzer, "-m", MODEL, "-u", f"127.0.0.1:{self.grpc_port}", "-i", "grpc",
            "-H", f"seldon-model:{SELDON_MODEL}", "--request-rate-range", "10",
            "--input-data", str(self.perf_analyzer_input()), "--measurement-interval", "1000", "--max-trials", "1",
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=self.perf_analyzer_env())
        (self.bench.out / "chain" / "perf_analyzer-grpc-probe.log").write_text(
            " ".join(command) + "\n" + result.stdout + result.stderr
        )
        if result.returncode != 0:
            message = (result.stdout + result.stderr).strip().splitlines()[-1]
            return f"over gRPC, exit {result.returncode}: {message}"
        return None

    def perf_analyzer(self, case, rep, rps, seconds):
        """perf_analyzer over gRPC through NGINX's gRPC port, in three windows of a third each."""
        csv_path = self.tmp / f"perf-{case}-{rep}.csv"
        command = [
            self.args.perf_analyzer, "-m", MODEL, "-u", f"127.0.0.1:{self.grpc_port}", "-i", "grpc",
            # perf_analyzer sends everything after the colon as the gRPC metadata value, a
            # leading space included, which Envoy's exact header match then fails to route.
            "-H", f"seldon-model:{SELDON_MODEL}",
            "--request-rate-range", f"{rps:g}", "--input-data", str(self.perf_analyzer_input()),
            "--measurement-mode", "time_windows", "--measurement-interval", str(seconds * 1000 // 3),
            "--stability-percentage", "1000", "--max-trials", "3", "-f", str(csv_path),
        ]
        log = self.bench.out / "chain" / case / f"perf_analyzer-{rep}"
        measured = measure(command, 1, log, timeout_s=seconds * 4 + 60, env=self.perf_analyzer_env())
        parsed = None
        if csv_path.exists():
            with open(csv_path) as f:
                rows = list(csv.DictReader(f))
            if rows:
                row = rows[0]
                completed = re.search(r"Request count: (\d+)", measured.stdout)
                parsed = {
                    "completed": int(completed.group(1)) if completed else None,
                    "rps": float(row["Inferences/Second"]),
                    "p50_ms": float(row["p50 latency"]) / 1000,
                    "p90_ms": float(row["p90 latency"]) / 1000,
                    "p99_ms": float(row["p99 latency"]) / 1000,
                    "errors": None,
                }
            shutil.copy(csv_path, log.with_suffix(".csv"))
        out = self.bench.record("chain", "perf_analyzer (gRPC)", case, rep, measured, parsed, log)
        if parsed:
            self.set_rate(out, rps, parsed["rps"])

    # -- Artillery -----------------------------------------------------------------------------
    def artillery(self, case, rep, rps, seconds):
        binary = self.args.artillery
        if not binary or not Path(binary).exists():
            if rep == 0:
                self.skip("artillery", case, "artillery is not installed (npm install artillery failed)")
            return
        # A fractional rate (1000/min) is written as a count of arrivals spread over the phase.
        if rps == int(rps):
            phase = f"    - duration: {seconds}\n      arrivalRate: {int(rps)}\n"
        else:
            phase = f"    - duration: {seconds}\n      arrivalCount: {round(rps * seconds)}\n"
        config = self.tmp / f"artillery-{case}.yml"
        config.write_text(
            "config:\n"
            f'  target: "{self.base}"\n'
            "  phases:\n" + phase +
            "  http:\n    timeout: 10\n"
            "scenarios:\n"
            "  - flow:\n"
            "      - post:\n"
            f'          url: "{PREFIX}/v2/models/{MODEL}/infer"\n'
            "          headers:\n"
            f'            Host: "{HOST}"\n'
            f'            seldon-model: "{SELDON_MODEL}"\n'
            '            content-type: "application/json"\n'
            f"          body: {json.dumps(PAYLOAD.read_text().strip())}\n"
        )
        report = self.tmp / f"artillery-{case}-{rep}.json"
        log = self.bench.out / "chain" / case / f"artillery-{rep}"
        env = dict(os.environ, ARTILLERY_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1")
        measured = measure([binary, "run", "--quiet", "--output", str(report), str(config)], 1, log, timeout_s=seconds * 3 + 120, env=env)
        parsed = None
        if report.exists():
            aggregate = json.loads(report.read_text())["aggregate"]
            counters = aggregate.get("counters", {})
            times = aggregate.get("summaries", {}).get("http.response_time", {})
            ok = counters.get("http.codes.200", 0)
            completed = counters.get("http.responses", 0) + counters.get("vusers.failed", 0)
            parsed = {
                "completed": completed,
                "errors": completed - ok,
                "rps": counters.get("http.requests", 0) / seconds,
                "p50_ms": times.get("p50"),
                "p90_ms": times.get("p90"),
                "p99_ms": times.get("p99"),
            }
            (log.with_suffix(".report.json")).write_text(report.read_text())
        out = self.bench.record("chain", "artillery", case, rep, measured, parsed, log)
        if parsed:
            self.set_rate(out, rps, parsed["rps"])


__all__ = ["Chain", "Tools"]
