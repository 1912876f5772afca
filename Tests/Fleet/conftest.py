"""Fixtures for the fleet test: nginx running deploy/nginx/rankd.conf in front of rankd replicas, all
on loopback. The interop fixtures (stubs generated from Protos/, RankdProcess) are reused from
Tests/Interop/conftest.py, loaded under another module name so the two conftests do not clash."""

import importlib.util
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "deploy" / "nginx" / "rankd.conf"

_spec = importlib.util.spec_from_file_location("interop_support", ROOT / "Tests" / "Interop" / "conftest.py")
interop = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(interop)

RankdProcess = interop.RankdProcess
free_port = interop.free_port
rankctl_binary = interop.rankctl_binary
synth = interop.synth


def nginx_binary():
    found = os.environ.get("NGINX_BIN") or shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(found):
        raise RuntimeError("nginx is not installed: `make fleet-test` installs it (apt package nginx)")
    return found


def site_config(listen_port, replicas, log_dir):
    """deploy/nginx/rankd.conf as shipped, with only what must differ here replaced: the replica
    lines (each keeps the parameters of the shipped first line), the listen address and the log
    path. Every replacement must match exactly once, so the test breaks if the file's shape changes."""
    text = SITE.read_text()
    block = re.search(r"(    # replicas: begin\n)(.*?)(    # replicas: end\n)", text, re.S)
    assert block, "deploy/nginx/rankd.conf lost its '# replicas: begin/end' markers"
    first = re.match(r"\s*server\s+(\S+)(.*)\n", block.group(2))
    assert first, "no server line between the replica markers"
    lines = "".join(f"    server {address}{first.group(2)}\n" for address in replicas)
    text = text[:block.start(2)] + lines + text[block.end(2):]
    text, n = re.subn(r"listen\s+\d+\s+http2;", f"listen 127.0.0.1:{listen_port} http2;", text)
    assert n == 1, "expected one 'listen PORT http2;' in deploy/nginx/rankd.conf"
    text, n = re.subn(r"/var/log/nginx/", f"{log_dir}/", text)
    assert n == 1, "expected one /var/log/nginx/ path in deploy/nginx/rankd.conf"
    return text, first.group(2)


def stop_child(server, sig):
    """Stops `server.proc` with `sig` (its graceful stop), SIGKILL after 10 s; closes `server.log`."""
    if server.proc and server.proc.poll() is None:
        server.proc.send_signal(sig)
        try:
            server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
    if getattr(server, "log", None):
        server.log.close()


class NginxProcess:
    """nginx in the foreground (`daemon off`) with its own prefix, config, pid and logs in a temp
    directory: nothing under /etc or /var is read or written, and no root is needed."""

    def __init__(self, base, replicas, worker_processes=1):
        self.base = Path(base)
        self.port = free_port()
        self.replicas = list(replicas)
        self.proc = None
        self.worker_processes = worker_processes

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def write_config(self):
        self.base.mkdir(parents=True, exist_ok=True)
        # Workers run as `nobody` when the master is root: they must reach the temp paths.
        os.chmod(self.base, 0o755)
        for name in ("logs", "tmp"):
            (self.base / name).mkdir(exist_ok=True)
            os.chmod(self.base / name, 0o777)
        site, self.server_parameters = site_config(self.port, self.replicas, self.base / "logs")
        (self.base / "rankd.conf").write_text(site)
        temp = "\n".join(f"    {kind}_temp_path {self.base}/tmp/{kind};"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (self.base / "nginx.conf").write_text(f"""daemon off;
master_process on;
worker_processes {self.worker_processes};
pid {self.base}/nginx.pid;
error_log {self.base}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
{temp}
    include {self.base}/rankd.conf;
}}
""")

    def command(self, *extra):
        return [nginx_binary(), "-p", f"{self.base}/", "-c", str(self.base / "nginx.conf"),
                "-e", str(self.base / "logs" / "error.log"), *extra]

    def check_config(self):
        self.write_config()
        out = subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stderr

    def start(self, timeout=15.0):
        self.check_config()
        self.log = open(self.base / "logs" / "stderr.log", "wb")
        self.proc = subprocess.Popen(self.command(), stdout=self.log, stderr=subprocess.STDOUT)
        interop.wait_for_listener(self.proc, self.port, timeout, "nginx", self.errors)
        return self

    def stop(self):
        stop_child(self, signal.SIGQUIT)  # graceful: finish open requests, then exit

    def errors(self):
        text = ""
        for name in ("error.log", "stderr.log"):
            path = self.base / "logs" / name
            if path.exists():
                text += path.read_text(errors="replace")
        return text


HAPROXY_CFG = ROOT / "deploy" / "haproxy" / "rankd.cfg"


class HAProxyProcess:
    """haproxy in the foreground (-db) running deploy/haproxy/rankd.cfg with only the replica lines
    and the bind address replaced; it logs to stderr, writes nothing else."""

    def __init__(self, base, replicas):
        self.base = Path(base)
        self.port = free_port()
        self.replicas = list(replicas)
        self.proc = None

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def write_config(self):
        self.base.mkdir(parents=True, exist_ok=True)
        text = HAPROXY_CFG.read_text()
        block = re.search(r"(    # replicas: begin\n)(.*?)(    # replicas: end\n)", text, re.S)
        assert block, "deploy/haproxy/rankd.cfg lost its '# replicas: begin/end' markers"
        lines = "".join(f"    server r{i + 1} {address}\n" for i, address in enumerate(self.replicas))
        text = text[:block.start(2)] + lines + text[block.end(2):]
        text, n = re.subn(r"bind :\d+ proto h2", f"bind 127.0.0.1:{self.port} proto h2", text)
        assert n == 1, "expected one 'bind :PORT proto h2' in deploy/haproxy/rankd.cfg"
        (self.base / "haproxy.cfg").write_text(text)

    def start(self, timeout=15.0):
        self.write_config()
        binary = os.environ.get("HAPROXY_BIN") or shutil.which("haproxy") or "/usr/sbin/haproxy"
        check = subprocess.run([binary, "-c", "-f", str(self.base / "haproxy.cfg")], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        self.log = open(self.base / "haproxy.log", "wb")
        self.proc = subprocess.Popen([binary, "-db", "-f", str(self.base / "haproxy.cfg")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        interop.wait_for_listener(self.proc, self.port, timeout, "haproxy", self.output)
        return self

    def stop(self):
        stop_child(self, signal.SIGUSR1)  # soft stop: finish open connections, then exit

    def output(self):
        path = self.base / "haproxy.log"
        return path.read_text(errors="replace") if path.exists() else ""
