#!/usr/bin/env python3
"""Measure inferload and other load generators side by side on 127.0.0.1.

Started by benches/peers/run.sh, which installs the peers first. Every measurement runs the
generator as a child process pinned to one CPU (taskset) and reads the child's own resource usage
from wait4(): user plus system CPU seconds and peak RSS. Tools alternate within each repetition
and the tables report medians over the repetitions. Raw outputs and results.json go to --out.

Sections:
  closed  NGINX (pinned to CPU 0) answers a fixed JSON body; each generator (pinned to CPU 1)
          keeps the same connections busy with one thread: wrk -t1, oha, hey, h2load --h1,
          inferload --concurrency N --connections N.
  open    fixed arrival rates (1,000 and 20,000 req/s) against the same NGINX: oha -q, hey -q
          (its rate is per worker, so the total is split over the workers), inferload --rate.
  h2      HTTP/2 with the same connections and streams for h2load and inferload: REST over h2c
          against NGINX (when this inferload build has an HTTP/2 REST transport), and gRPC
          ModelInfer against `inferload serve --grpc-addr` (pinned to CPU 0), which h2load drives
          with the pre-encoded message inferload's gRPC lane sends. NGINX cannot be the gRPC
          target: without a gRPC upstream it sends no grpc-status trailer, which a gRPC client
          counts as a failed call.
  soak    inferload at 20,000 req/s for five minutes, RSS sampled every second.
  chain   the testbed (NGINX -> Envoy -> MLServer): inferload, perf_analyzer and Artillery at
          the same arrival rates.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REQUEST_PATH = "/v2/models/bench/infer"

# A V2 inference request and response of about 400 bytes each, like a small tabular model's.
REQUEST_BODY = json.dumps(
    {
        "id": "bench-0001",
        "inputs": [
            {
                "name": "input_data",
                "shape": [1, 49],
                "datatype": "FP32",
                "data": [round(0.137 * i - 2.0, 3) for i in range(49)],
            }
        ],
    },
    separators=(",", ":"),
)
RESPONSE_BODY = json.dumps(
    {
        "model_name": "bench",
        "model_version": "1",
        "id": "bench-0001",
        "parameters": {"content_type": "np"},
        "outputs": [
            {
                "name": "probabilities",
                "shape": [1, 2],
                "datatype": "FP64",
                "parameters": {"content_type": "np"},
                "data": [0.8734519481658936, 0.12654805183410645],
            },
            {
                "name": "label",
                "shape": [1, 1],
                "datatype": "INT64",
                "parameters": {"content_type": "np"},
                "data": [0],
            },
        ],
        "padding": "x" * 45,
    },
    separators=(",", ":"),
)

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    http2_max_requests 100000000;
    default_type application/json;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 '{body}'; }}
    }}
    server {{
        listen 127.0.0.1:{h2_port} http2;
        location / {{ return 200 '{body}'; }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


class Nginx:
    """The Debian nginx binary with its own minimal configuration in a temporary folder."""

    def __init__(self, tmp: Path, cpu: int):
        self.tmp = tmp / "nginx"
        self.tmp.mkdir()
        self.port = free_port()
        self.h2_port = free_port()
        conf = self.tmp / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(tmp=self.tmp, port=self.port, h2_port=self.h2_port, body=RESPONSE_BODY)
        )
        self.process = subprocess.Popen(
            ["taskset", "-c", str(cpu), "nginx", "-p", str(self.tmp), "-c", str(conf), "-e", str(self.tmp / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"nginx exited at start: {self.process.stderr.read().decode()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise SystemExit(f"nginx did not listen on 127.0.0.1:{self.port} within 10 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def pb_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def pb_field(number: int, data: bytes) -> bytes:
    """Encode a length-delimited protobuf field (wire type 2)."""
    return pb_varint(number << 3 | 2) + pb_varint(len(data)) + data


def grpc_request_frame() -> bytes:
    """Encode REQUEST_BODY as a KServe V2 `ModelInferRequest` in one gRPC message frame, the
    message inferload's gRPC lane sends for the same payload, for h2load to send as is."""
    request = json.loads(REQUEST_BODY)
    message = pb_field(1, b"bench") + pb_field(3, request["id"].encode())
    for tensor in request["inputs"]:
        contents = pb_field(6, struct.pack(f"<{len(tensor['data'])}f", *tensor["data"]))
        message += pb_field(
            5,
            pb_field(1, tensor["name"].encode())
            + pb_field(2, tensor["datatype"].encode())
            + pb_field(3, b"".join(pb_varint(d) for d in tensor["shape"]))
            + pb_field(5, contents),
        )
    return b"\x00" + struct.pack(">I", len(message)) + message


GRPC_INFER_PATH = "/inference.GRPCInferenceService/ModelInfer"


class GrpcServe:
    """`inferload serve` with its gRPC listener, pinned to one CPU: the gRPC target."""

    def __init__(self, inferload: str, tmp: Path, cpu: int):
        self.port = free_port()
        self.grpc_port = free_port()
        self.log = open(tmp / "grpc-serve.log", "wb")
        self.process = subprocess.Popen(
            ["taskset", "-c", str(cpu), inferload, "serve", "--addr", f"127.0.0.1:{self.port}",
             "--grpc-addr", f"127.0.0.1:{self.grpc_port}"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"inferload serve exited at start; see {tmp / 'grpc-serve.log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.grpc_port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise SystemExit(f"inferload serve did not listen on 127.0.0.1:{self.grpc_port} within 10 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class Measured:
    """One generator run: exit status, output, and the process's own CPU and peak RSS."""

    def __init__(self, status, stdout, stderr, cpu_s, max_rss_kib, wall_s, rss_samples):
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
        self.cpu_s = cpu_s
        self.max_rss_kib = max_rss_kib
        self.wall_s = wall_s
        self.rss_samples = rss_samples


def measure(command, cpu, log: Path, timeout_s: float, sample_rss=False, env=None) -> Measured:
    """Runs `command` pinned to `cpu` under GNU time and returns its own CPU time and peak RSS.

    GNU time reads the generator's rusage from wait4(), which covers the generator's threads and
    the children it waited for. taskset execs the command in the same process. The generator is
    forked from `time`, not from this Python process, so its peak RSS does not start at Python's.
    """
    pinned = ["taskset", "-c", str(cpu), *command] if cpu is not None else list(command)
    log.parent.mkdir(parents=True, exist_ok=True)
    out_path = log.with_suffix(".stdout")
    err_path = log.with_suffix(".stderr")
    time_path = log.with_suffix(".time")
    full = ["/usr/bin/time", "-f", "%e %U %S %M", "-o", str(time_path), *pinned]
    started = time.monotonic()
    samples = []
    status = None
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        process = subprocess.Popen(full, stdout=out, stderr=err, env=env, start_new_session=True)
        deadline = started + timeout_s
        while status is None:
            try:
                status = process.wait(timeout=1.0 if sample_rss else 0.05)
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                    status = "timeout"
                elif sample_rss:
                    samples.append((round(time.monotonic() - started, 1), rss_kib(child_pid(process.pid))))
    wall = time.monotonic() - started
    log.with_suffix(".cmd").write_text(" ".join(pinned) + "\n")
    cpu_s, max_rss = None, None
    fields = time_path.read_text().split() if time_path.exists() else []
    if len(fields) >= 4:
        # `time` prints "Command exited with non-zero status N" before its line on a failure.
        wall_time, user, system, max_rss = fields[-4:]
        cpu_s, max_rss = float(user) + float(system), int(max_rss)
        if status == 0:
            wall = float(wall_time)
    return Measured(
        status,
        out_path.read_text(errors="replace"),
        err_path.read_text(errors="replace"),
        cpu_s,
        max_rss,
        wall,
        samples,
    )


def child_pid(pid: int):
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def rss_kib(pid):
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


# ---------------------------------------------------------------------------------------------
# Generators: each returns a command and a parser from its output to (completed, errors, extra).


class Tools:
    def __init__(self, args, tmp: Path):
        self.args = args
        self.tmp = tmp
        self.inferload = args.inferload
        self.oha = args.oha
        self.body = tmp / "request.json"
        self.body.write_text(REQUEST_BODY)
        self.grpc_body = tmp / "request.grpc"
        self.grpc_body.write_bytes(grpc_request_frame())
        self.wrk_script = tmp / "post.lua"
        self.wrk_script.write_text(
            'wrk.method = "POST"\n'
            f'local file = io.open("{self.body}", "rb")\n'
            "wrk.body = file:read(\"*a\")\nfile:close()\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        self.scenario = tmp / "bench.toml"
        self.scenario.write_text(
            "# Generator benchmark against a fixed-response NGINX; no V2 health endpoints there.\n"
            "[target]\n"
            'url = "http://127.0.0.1:1"\n'
            'model = "bench"\n'
            "preflight = false\n"
            'timeout = "10s"\n\n'
            "[payload]\n"
            f'file = "{self.body}"\n'
        )
        self.run_counter = 0

    # -- inferload -----------------------------------------------------------------------------
    def inferload_cmd(self, url, duration, extra, scenario=None):
        self.run_counter += 1
        out = self.tmp / f"inferload-run-{self.run_counter}"
        command = [
            self.inferload, "run", str(scenario or self.scenario), "--url", url,
            "--duration", f"{duration}s", "--warmup", "0s", "-q", "--out", str(out), *extra,
        ]
        return command, out

    @staticmethod
    def inferload_result(out: Path):
        summary = json.loads((out / "summary.json").read_text())
        requests = summary["requests"]
        completed = requests["ok"] + requests["errors"] + requests["warmup_ok"] + requests["warmup_errors"]
        lag = summary.get("schedule_lag_ms") or {}
        return {
            "completed": completed,
            "errors": requests["errors"] + requests["warmup_errors"],
            "rps": summary["load"]["achieved_rps"],
            "completed_rps": requests["ok"] / summary["load"]["measured_s"] if summary["load"]["measured_s"] else None,
            "lag_p99_us": lag.get("p99", 0) * 1000 if lag else None,
            "lag_p50_us": lag.get("p50", 0) * 1000 if lag else None,
            "late": requests.get("late"),
            "late_pct": round(100 * requests["late"] / requests["sent"], 3) if requests.get("sent") else None,
            "dropped": requests.get("dropped"),
            "p50_ms": summary["latency_ms"]["p50"],
            "p90_ms": summary["latency_ms"]["p90"],
            "p99_ms": summary["latency_ms"]["p99"],
            "service_p50_ms": summary["service_time_ms"]["p50"],
            "summary": summary,
        }

    # -- wrk -----------------------------------------------------------------------------------
    def wrk_cmd(self, url, duration, connections):
        return ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(self.wrk_script), url + REQUEST_PATH]

    @staticmethod
    def wrk_result(text, duration):
        match = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
        completed = int(match.group(1))
        non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
        socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
        errors = int(non_2xx.group(1)) if non_2xx else 0
        if socket_errors:
            errors += sum(int(g) for g in socket_errors.groups())
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
        p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", text)
        return {"completed": completed, "errors": errors, "rps": rps, "p50_ms": to_ms(p50) if p50 else None}

    # -- oha -----------------------------------------------------------------------------------
    def oha_cmd(self, url, duration, connections, rate=None, path=REQUEST_PATH, host=None, headers=()):
        command = [
            self.oha, url + path, "-z", f"{duration}s", "-c", str(connections), "--no-tui",
            "--output-format", "json", "-m", "POST", "-D", str(self.body), "-T", "application/json",
        ]
        if rate:
            command += ["-q", str(rate), "--latency-correction"]
        if host:
            command += ["--host", host]
        for header in headers:
            command += ["-H", header]
        return command

    @staticmethod
    def oha_result(text, duration):
        data = json.loads(text)
        summary = data["summary"]
        statuses = data.get("statusCodeDistribution", {})
        ok = sum(count for code, count in statuses.items() if code.startswith("2"))
        # oha cancels the requests in flight at the end of -z and lists them as errors; they
        # never completed, so they are left out like the other tools' unfinished requests.
        errors_dist = {
            kind: count for kind, count in data.get("errorDistribution", {}).items() if kind != "aborted due to deadline"
        }
        completed = sum(statuses.values()) + sum(errors_dist.values())
        percentiles = data.get("latencyPercentiles", {})
        return {
            "completed": completed,
            "errors": completed - ok,
            "rps": summary.get("requestsPerSec"),
            "completed_rps": ok / duration,
            "p50_ms": seconds_to_ms(percentiles.get("p50")),
            "p90_ms": seconds_to_ms(percentiles.get("p90")),
            "p99_ms": seconds_to_ms(percentiles.get("p99")),
        }

    # -- hey -----------------------------------------------------------------------------------
    def hey_cmd(self, url, duration, connections, rate=None):
        command = [
            "hey", "-z", f"{duration}s", "-c", str(connections), "-cpus", "1", "-m", "POST",
            "-D", str(self.body), "-T", "application/json",
        ]
        if rate:
            # hey's -q is per worker.
            command += ["-q", str(rate / connections)]
        return command + [url + REQUEST_PATH]

    @staticmethod
    def hey_result(text, duration):
        statuses = {int(code): int(count) for code, count in re.findall(r"\[(\d+)\]\s+(\d+) responses", text)}
        ok = sum(count for code, count in statuses.items() if 200 <= code < 300)
        error_section = text.split("Error distribution:")[1] if "Error distribution:" in text else ""
        transport_errors = sum(int(n) for n in re.findall(r"^\s*\[(\d+)\]", error_section, re.M))
        completed = sum(statuses.values()) + transport_errors
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
        p50 = re.search(r"50% in ([\d.]+) secs", text)
        return {
            "completed": completed,
            "errors": completed - ok,
            "rps": rps,
            "completed_rps": ok / duration,
            "p50_ms": float(p50.group(1)) * 1000 if p50 else None,
        }

    # -- h2load --------------------------------------------------------------------------------
    def h2load_cmd(self, url, duration, connections, streams, h1=False, grpc=False):
        body, content_type = (self.grpc_body, "application/grpc") if grpc else (self.body, "application/json")
        command = [
            "h2load", "-t", "1", "-c", str(connections), "-m", str(streams), "-D", str(duration),
            "-d", str(body), "-H", f"content-type: {content_type}",
        ]
        if grpc:
            command += ["-H", "te: trailers"]
        if h1:
            command.append("--h1")
        return command + [url + (GRPC_INFER_PATH if grpc else REQUEST_PATH)]

    @staticmethod
    def h2load_result(text, duration):
        match = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", text)
        done, succeeded = int(match.group(3)), int(match.group(4))
        rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text).group(1))
        status = re.search(r"status codes: (\d+) 2xx", text)
        ok = int(status.group(1)) if status else succeeded
        return {"completed": done, "errors": done - ok, "rps": rps}


def to_ms(match):
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def seconds_to_ms(value):
    return None if value is None else value * 1000


# ---------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args):
        self.args = args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix="inferload-peers-"))
        self.tools = Tools(args, self.tmp)
        self.rows = []
        self.nginx = None

    def record(self, section, tool, case, rep, measured: Measured, parsed, log):
        row = {
            "section": section,
            "tool": tool,
            "case": case,
            "rep": rep,
            "status": measured.status,
            "cpu_s": measured.cpu_s,
            "max_rss_kib": measured.max_rss_kib,
            "wall_s": round(measured.wall_s, 2),
            "load_1m": load_average(),
            "log": str(log.relative_to(self.out)),
        }
        if parsed:
            parsed = dict(parsed)
            parsed.pop("summary", None)
            row.update(parsed)
            if parsed.get("completed") and measured.cpu_s is not None:
                row["cpu_us_per_req"] = round(measured.cpu_s / parsed["completed"] * 1e6, 2)
        if measured.rss_samples:
            row["rss_samples_kib"] = measured.rss_samples
        self.rows.append(row)
        (self.out / "results.json").write_text(json.dumps(self.rows, indent=1))
        summary = {k: row.get(k) for k in ("rps", "cpu_us_per_req", "max_rss_kib", "errors", "lag_p99_us", "p50_ms")}
        print(f"  {section:6} {case:18} {tool:10} rep {rep}: {summary} load {row['load_1m']}", flush=True)
        return row

    def run_one(self, section, tool, case, rep, command, parser, duration, out_dir=None, sample_rss=False, cpu=1, timeout_s=None):
        log = self.out / section / case / f"{tool}-{rep}"
        measured = measure(command, cpu, log, timeout_s=timeout_s or duration + 60, sample_rss=sample_rss)
        parsed = None
        try:
            if out_dir is not None:
                parsed = Tools.inferload_result(out_dir)
            else:
                parsed = parser(measured.stdout + measured.stderr, duration)
        except Exception as error:  # a failed peer is reported, not fatal
            print(f"  {tool}: cannot read its output ({error}); see {log}.stderr", flush=True)
        if out_dir is not None and (out_dir / "summary.json").exists():
            shutil.copy(out_dir / "summary.json", log.with_suffix(".summary.json"))
        return self.record(section, tool, case, rep, measured, parsed, log)

    # -- sections ------------------------------------------------------------------------------
    def closed(self):
        a = self.args
        url = self.nginx.url
        c = a.connections
        d = a.duration
        tools = {
            "wrk": lambda: (self.tools.wrk_cmd(url, d, c), Tools.wrk_result, None),
            "oha": lambda: (self.tools.oha_cmd(url, d, c), Tools.oha_result, None),
            "hey": lambda: (self.tools.hey_cmd(url, d, c), Tools.hey_result, None),
            "h2load-h1": lambda: (self.tools.h2load_cmd(url, d, c, 1, h1=True), Tools.h2load_result, None),
            "inferload": lambda: (lambda cmd_out: (cmd_out[0], None, cmd_out[1]))(
                self.tools.inferload_cmd(url, d, ["--concurrency", str(c), "--connections", str(c)])
            ),
        }
        case = f"c{c}"
        for rep in range(a.reps):
            for name in a.tools_closed:
                command, parser, out_dir = tools[name]()
                self.run_one("closed", name, case, rep, command, parser, d, out_dir)

    def open(self):
        a = self.args
        url = self.nginx.url
        c = a.open_connections
        for rate in a.rates:
            d = a.duration
            case = f"{rate}rps"
            for rep in range(a.reps):
                for name in a.tools_open:
                    if name == "oha":
                        command, parser, out_dir = self.tools.oha_cmd(url, d, c, rate=rate), Tools.oha_result, None
                    elif name == "hey":
                        command, parser, out_dir = self.tools.hey_cmd(url, d, c, rate=rate), Tools.hey_result, None
                    else:
                        command, out_dir = self.tools.inferload_cmd(
                            url, d, ["--rate", f"{rate}/s", "--connections", str(c)]
                        )
                        parser = None
                    row = self.run_one("open", name, case, rep, command, parser, d, out_dir)
                    if row.get("completed"):
                        achieved = row.get("rps") if name == "inferload" else row["completed"] / d
                        row["target_rps"] = rate
                        row["achieved_rps"] = achieved
                        row["rate_error_pct"] = round((achieved / rate - 1) * 100, 3)
                        (self.out / "results.json").write_text(json.dumps(self.rows, indent=1))

    def h2(self):
        self.grpc()
        a = self.args
        url = f"http://127.0.0.1:{self.nginx.h2_port}"
        c, m, d = a.h2_connections, a.h2_streams, a.duration
        case = f"h2c-c{c}m{m}"
        scenario = self.tmp / "bench-h2.toml"
        scenario.write_text(
            self.tools.scenario.read_text().replace("[target]\n", '[target]\ntransport = "http2"\n', 1)
            + f"\n[target.http2]\nstreams_per_connection = {m}\n"
        )
        supported = True
        for rep in range(a.reps):
            self.run_one("h2", "h2load", case, rep, self.tools.h2load_cmd(url, d, c, m), Tools.h2load_result, d)
            if supported:
                command, out_dir = self.tools.inferload_cmd(
                    url, d, ["--concurrency", str(c * m), "--connections", str(c)], scenario=scenario
                )
                row = self.run_one("h2", "inferload", case, rep, command, None, d, out_dir)
                if row["status"] == 2:
                    # Exit status 2 is a usage or scenario error: this build has no HTTP/2 transport.
                    self.rows.remove(row)
                    supported = False
                    reason = (self.out / row["log"]).with_suffix(".stderr").read_text().strip()
                    note = f"this inferload build rejects transport = \"http2\": {reason}"
                    print(f"  h2: inferload skipped: {note}")
                    self.rows.append({"section": "h2", "tool": "inferload", "case": case, "skipped": note})

    def grpc(self):
        """gRPC ModelInfer against `inferload serve`: h2load sends the pre-encoded message,
        inferload its gRPC lanes, with the same connections and streams."""
        a = self.args
        c, m, d = a.h2_connections, a.h2_streams, a.duration
        case = f"grpc-c{c}m{m}"
        serve = GrpcServe(self.tools.inferload, self.tmp, cpu=0)
        try:
            scenario = self.tmp / "bench-grpc.toml"
            scenario.write_text(
                self.tools.scenario.read_text().replace("[target]\n", '[target]\ntransport = "grpc"\n', 1)
                .replace("[payload]\n", f"[target.grpc]\nstreams_per_connection = {m}\n\n[payload]\n", 1)
            )
            for rep in range(a.reps):
                command = self.tools.h2load_cmd(serve.url, d, c, m, grpc=True)
                self.run_one("h2", "h2load", case, rep, command, Tools.h2load_result, d)
                command, out_dir = self.tools.inferload_cmd(
                    serve.url, d, ["--concurrency", str(c * m), "--connections", str(c)], scenario=scenario
                )
                self.run_one("h2", "inferload", case, rep, command, None, d, out_dir)
        finally:
            serve.stop()

    def soak(self):
        a = self.args
        command, out_dir = self.tools.inferload_cmd(
            self.nginx.url, a.soak_seconds, ["--rate", f"{a.soak_rate}/s", "--connections", str(a.open_connections)]
        )
        # A generator that falls behind keeps releasing late requests after the duration.
        self.run_one(
            "soak", "inferload", f"{a.soak_rate}rps-{a.soak_seconds}s", 0, command, None, a.soak_seconds, out_dir,
            sample_rss=True, timeout_s=2 * a.soak_seconds + 60,
        )

    def chain(self):
        from chain import Chain  # noqa: E402 (optional section with its own setup)

        Chain(self).run()

    def run(self):
        print(f"results: {self.out}")
        meta = machine_info()
        meta["args"] = vars(self.args)
        meta["request_bytes"] = len(REQUEST_BODY)
        meta["response_bytes"] = len(RESPONSE_BODY)
        meta["started_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        try:
            needs_nginx = {"closed", "open", "h2", "soak"} & set(self.args.sections)
            if needs_nginx:
                self.nginx = Nginx(self.tmp, cpu=0)
                meta["nginx"] = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
            for section in self.args.sections:
                print(f"== {section}", flush=True)
                getattr(self, section)()
        finally:
            if self.nginx:
                self.nginx.stop()
            meta["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            (self.out / "machine.json").write_text(json.dumps(meta, indent=1))
            shutil.rmtree(self.tmp, ignore_errors=True)
        report = tables(self.rows, meta)
        (self.out / "tables.md").write_text(report)
        print(report)


def machine_info():
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = re.search(r"Model name:\s+(.*)", lscpu)
    versions = {}
    for name, command in {
        "wrk": ["wrk", "-v"],
        "hey": ["dpkg-query", "-W", "-f=${Version}", "hey"],
        "h2load": ["h2load", "--version"],
    }.items():
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=10)
            versions[name] = (result.stdout + result.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            versions[name] = None
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model.group(1).strip() if model else None,
        "kernel": os.uname().release,
        "versions": versions,
    }


# ---------------------------------------------------------------------------------------------
# Tables


def fmt(value, digits=1):
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def group(rows, section):
    grouped = {}
    for row in rows:
        if row.get("section") == section and "skipped" not in row:
            grouped.setdefault((row["case"], row["tool"]), []).append(row)
    return grouped


def med(rows, key):
    return median([r.get(key) for r in rows])


def tables(rows, meta) -> str:
    lines = [
        f"machine: {meta.get('cpu_model')}, nproc {meta.get('nproc')}, kernel {meta.get('kernel')}",
        f"run: {meta.get('started_at')} to {meta.get('finished_at')}",
        "",
    ]
    ratios = []

    closed = group(rows, "closed")
    if closed:
        lines += [
            "### Closed loop, HTTP/1.1, one generator thread (medians)",
            "",
            "| case | tool | req/s | CPU s per 100k req | CPU us/req | peak RSS MiB | errors | load (1 min) | reps |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for (case, tool), rs in sorted(closed.items()):
            us = med(rs, "cpu_us_per_req")
            lines.append(
                f"| {case} | {tool} | {fmt(med(rs, 'rps'), 0)} | {fmt(us / 10 if us else None, 2)} | {fmt(us, 2)} | "
                f"{fmt(med(rs, 'max_rss_kib') / 1024 if med(rs, 'max_rss_kib') else None)} | {fmt(med(rs, 'errors'), 0)} | "
                f"{fmt(med(rs, 'load_1m'), 2)} | {len(rs)} |"
            )
        for case in sorted({c for c, _ in closed}):
            wrk, mine = closed.get((case, "wrk")), closed.get((case, "inferload"))
            if wrk and mine:
                ratios.append(("closed " + case + ": throughput inferload / wrk", med(mine, "rps") / med(wrk, "rps"), ">= 0.95"))
                ratios.append(("closed " + case + ": CPU per request inferload / wrk", med(mine, "cpu_us_per_req") / med(wrk, "cpu_us_per_req"), "<= 1.10"))
        lines.append("")

    opened = group(rows, "open")
    if opened:
        lines += [
            "### Open loop, HTTP/1.1 (medians)",
            "",
            "| rate | tool | achieved req/s | rate error % | schedule lag p99 us | late % | CPU us/req | peak RSS MiB | errors | load (1 min) | reps |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for (case, tool), rs in sorted(opened.items(), key=lambda kv: (int(kv[0][0].rstrip("rps")), kv[0][1])):
            rss = med(rs, "max_rss_kib")
            lines.append(
                f"| {case} | {tool} | {fmt(med(rs, 'achieved_rps'), 1)} | {fmt(med(rs, 'rate_error_pct'), 3)} | "
                f"{fmt(med(rs, 'lag_p99_us'), 0)} | {fmt(med(rs, 'late_pct'), 3)} | {fmt(med(rs, 'cpu_us_per_req'), 2)} | {fmt(rss / 1024 if rss else None)} | "
                f"{fmt(med(rs, 'errors'), 0)} | {fmt(med(rs, 'load_1m'), 2)} | {len(rs)} |"
            )
        for case in sorted({c for c, _ in opened}, key=lambda c: int(c.rstrip("rps"))):
            oha, mine = opened.get((case, "oha")), opened.get((case, "inferload"))
            if mine:
                ratios.append((f"open {case}: |rate error| inferload %", abs(med(mine, "rate_error_pct")), "<= 0.5 (20k), <= 0.2 (1k)"))
                ratios.append((f"open {case}: schedule lag p99 us", med(mine, "lag_p99_us"), "<= 100 (1k)"))
                # inferload releases every scheduled request, so a pacer that falls behind keeps
                # its count and shows here instead of in the rate error.
                ratios.append((f"open {case}: inferload requests released > 1 ms late, %", med(mine, "late_pct"), "rate held only if ~0"))
                rss = med(mine, "max_rss_kib")
                ratios.append((f"open {case}: peak RSS MiB", rss / 1024 if rss else None, "<= 32 (20k)"))
            if oha and mine:
                ratios.append((f"open {case}: CPU per request inferload / oha", med(mine, "cpu_us_per_req") / med(oha, "cpu_us_per_req"), "<= 0.6 (20k), <= 1.0 (1k)"))
        lines.append("")

    h2 = group(rows, "h2")
    if h2:
        lines += [
            "### HTTP/2 cleartext: REST over h2c and gRPC (medians)",
            "",
            "| case | tool | req/s | CPU us/req | peak RSS MiB | errors | reps |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for (case, tool), rs in sorted(h2.items()):
            rss = med(rs, "max_rss_kib")
            lines.append(
                f"| {case} | {tool} | {fmt(med(rs, 'rps'), 0)} | {fmt(med(rs, 'cpu_us_per_req'), 2)} | "
                f"{fmt(rss / 1024 if rss else None)} | {fmt(med(rs, 'errors'), 0)} | {len(rs)} |"
            )
        for row in rows:
            if row.get("section") == "h2" and "skipped" in row:
                lines.append(f"\n{row['tool']}: skipped: {row['skipped']}")
        for case in sorted({c for c, _ in h2}):
            h2load, mine = h2.get((case, "h2load")), h2.get((case, "inferload"))
            if h2load and mine and med(mine, "cpu_us_per_req") and med(h2load, "cpu_us_per_req"):
                limit = "<= 1.30" if case.startswith("grpc") else "<= 1.00"
                ratios.append((f"{case}: CPU per request inferload / h2load", med(mine, "cpu_us_per_req") / med(h2load, "cpu_us_per_req"), limit))
        lines.append("")

    soak = [r for r in rows if r.get("section") == "soak"]
    for row in soak:
        samples = [s for s in row.get("rss_samples_kib", []) if s[1]]
        at = lambda t: next((kib for second, kib in samples if second >= t), None)  # noqa: E731
        first, last = at(60), at(row.get("wall_s", 0) - 5)
        # A run killed at its time limit has no rusage line; its sampled peak stands in.
        peak = row.get("max_rss_kib") or max((kib for _, kib in samples), default=None)
        status = "" if row.get("status") == 0 else f" (exit status {row.get('status')}; RSS from samples)"
        lines += [
            "### Soak (inferload)",
            "",
            f"{row['case']}{status}: peak RSS {fmt(peak / 1024 if peak else None)} MiB; RSS at 60 s {fmt(first / 1024 if first else None)} MiB, "
            f"near the end {fmt(last / 1024 if last else None)} MiB; CPU {fmt(row.get('cpu_us_per_req'), 2)} us/req; "
            f"lag p99 {fmt(row.get('lag_p99_us'), 0)} us",
            "",
        ]
        if first and last:
            ratios.append(("soak: RSS growth from 60 s to the end, MiB", (last - first) / 1024, "<= 1"))

    chain_rows = group(rows, "chain")
    if chain_rows:
        lines += [
            "### Real chain (testbed NGINX -> Envoy -> MLServer), medians",
            "",
            "| rate | tool | achieved req/s | p50 ms | p90 ms | p99 ms | CPU us/req | peak RSS MiB | errors | reps |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for (case, tool), rs in sorted(chain_rows.items()):
            rss = med(rs, "max_rss_kib")
            lines.append(
                f"| {case} | {tool} | {fmt(med(rs, 'achieved_rps'), 1)} | {fmt(med(rs, 'p50_ms'), 2)} | {fmt(med(rs, 'p90_ms'), 2)} | "
                f"{fmt(med(rs, 'p99_ms'), 2)} | {fmt(med(rs, 'cpu_us_per_req'), 1)} | {fmt(rss / 1024 if rss else None)} | "
                f"{fmt(med(rs, 'errors'), 0)} | {len(rs)} |"
            )
        for row in rows:
            if row.get("section") == "chain" and "skipped" in row:
                lines.append(f"\n{row['tool']}: not measured: {row['skipped']}")
        lines.append("")

    if ratios:
        lines += ["### Targets", "", "| figure | value | target |", "|---|---:|---|"]
        for name, value, target in ratios:
            lines.append(f"| {name} | {fmt(value, 3) if isinstance(value, float) else fmt(value)} | {target} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def retable(folder: Path):
    """Re-reads the peers' raw outputs in `folder` and prints its tables again."""
    rows = json.loads((folder / "results.json").read_text())
    meta = json.loads((folder / "machine.json").read_text())
    parsers = {"wrk": Tools.wrk_result, "oha": Tools.oha_result, "hey": Tools.hey_result}
    for row in rows:
        parser = parsers.get(row.get("tool"))
        if parser is None or "log" not in row:
            continue
        log = folder / row["log"]
        text = log.with_suffix(".stdout").read_text(errors="replace") + log.with_suffix(".stderr").read_text(errors="replace")
        duration = meta["args"]["duration"]
        parsed = parser(text, duration)
        row.update(parsed)
        if parsed.get("completed") and row.get("cpu_s") is not None:
            row["cpu_us_per_req"] = round(row["cpu_s"] / parsed["completed"] * 1e6, 2)
        if row.get("target_rps"):
            row["achieved_rps"] = parsed["completed"] / duration
            row["rate_error_pct"] = round((row["achieved_rps"] / row["target_rps"] - 1) * 100, 3)
    (folder / "results.json").write_text(json.dumps(rows, indent=1))
    report = tables(rows, meta)
    (folder / "tables.md").write_text(report)
    print(report)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--retable":
        retable(Path(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inferload", required=True, help="path of the inferload binary")
    parser.add_argument("--oha", default="oha", help="path of the oha binary")
    parser.add_argument("--perf-analyzer", default=None, help="path of Triton's perf_analyzer")
    parser.add_argument("--perf-analyzer-libs", default=None, help="folder with libcudart.so.12 for perf_analyzer")
    parser.add_argument("--artillery", default=None, help="path of the artillery command")
    parser.add_argument("--out", required=True, help="folder for raw outputs and results.json")
    parser.add_argument("--quick", action="store_true", help="short runs and two repetitions")
    parser.add_argument("--sections", default="closed,open,h2", help="comma-separated: closed,open,h2,soak,chain")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 5, quick 2)")
    parser.add_argument("--duration", type=int, default=None, help="seconds per measurement (default 10, quick 3)")
    parser.add_argument("--connections", type=int, default=50, help="closed-loop connections")
    parser.add_argument("--open-connections", type=int, default=50, help="open-loop connections")
    parser.add_argument("--rates", default="1000,20000", help="open-loop rates, req/s")
    parser.add_argument("--h2-connections", type=int, default=10)
    parser.add_argument("--h2-streams", type=int, default=10)
    parser.add_argument("--soak-seconds", type=int, default=300)
    parser.add_argument("--soak-rate", type=int, default=20000)
    parser.add_argument("--chain-rates", default="1000/min,100/s,250/s")
    parser.add_argument("--chain-seconds", type=int, default=None, help="seconds per chain run (default 30, quick 10)")
    parser.add_argument("--tools-closed", default="wrk,oha,hey,h2load-h1,inferload")
    parser.add_argument("--tools-open", default="oha,hey,inferload")
    args = parser.parse_args()
    args.sections = [s for s in args.sections.split(",") if s]
    args.reps = args.reps or (2 if args.quick else 5)
    args.duration = args.duration or (3 if args.quick else 10)
    args.chain_seconds = args.chain_seconds or (10 if args.quick else 30)
    args.rates = [int(r) for r in args.rates.split(",")]
    args.tools_closed = args.tools_closed.split(",")
    args.tools_open = args.tools_open.split(",")
    if os.cpu_count() < 2:
        sys.exit("this comparison pins the server and the generator to separate CPUs; it needs 2 or more")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    Bench(args).run()


if __name__ == "__main__":
    main()
