"""llama.cpp's own server, from the `xllamacpp` wheel, run as a child process on 127.0.0.1.

`LlamaServer` starts `python -m rp_context.backends.llamaserver` (which builds xllamacpp's
`CommonParams` and keeps an `xllamacpp.Server` listening), waits until `/health` answers, and
stops it on `stop()` or at the end of a `with` block. Tests and benchmarks use it; a user can
run the same thing by hand:

    python -m rp_context.backends.llamaserver --port 8080 --parallel 2 --slot-save-path ./slots
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from ..errors import BackendError

__all__ = ["ServerOptions", "LlamaServer", "free_port", "main"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerOptions(BaseModel):
    """What the server is started with; `n_ctx` is the whole cache, split evenly over the slots."""

    model_config = ConfigDict(extra="forbid")

    model: Path | None = None
    """GGUF file; None: the default model."""
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)
    """0: a free port."""
    n_ctx: int = Field(4096, ge=64)
    n_parallel: int = Field(1, ge=1)
    n_threads: int | None = Field(None, ge=1)
    n_threads_batch: int | None = Field(None, ge=1)
    n_batch: int = Field(512, ge=1)
    slot_save_path: Path | None = None
    """Folder for `/slots/{id}?action=save|restore` files; None: slot save is off."""
    n_cache_reuse: int = Field(0, ge=0)
    """Server default for reusing shifted cache chunks of at least this many tokens (0: off)."""
    cache_ram_mib: int = Field(0, ge=-1)
    """The server's host-RAM prompt cache (MiB; -1: no limit; 0: off, so slot use is explicit)."""
    n_gpu_layers: int = Field(0, ge=-1)

    def argv(self) -> list[str]:
        """Command-line arguments for `main`."""
        args = ["--port", str(self.port), "--host", self.host, "--ctx-size", str(self.n_ctx),
                "--parallel", str(self.n_parallel), "--batch-size", str(self.n_batch),
                "--cache-reuse", str(self.n_cache_reuse), "--cache-ram", str(self.cache_ram_mib),
                "--n-gpu-layers", str(self.n_gpu_layers)]
        if self.model is not None:
            args += ["--model", str(self.model)]
        if self.n_threads is not None:
            args += ["--threads", str(self.n_threads)]
        if self.n_threads_batch is not None:
            args += ["--threads-batch", str(self.n_threads_batch)]
        if self.slot_save_path is not None:
            args += ["--slot-save-path", str(self.slot_save_path)]
        return args


class LlamaServer:
    """A llama.cpp server child process; `url` once started. Use as a context manager."""

    def __init__(self, options: ServerOptions | None = None, *, log: str | Path | None = None,
                 startup_timeout: float = 180.0, **overrides: Any) -> None:
        opts = (options or ServerOptions()).model_dump()
        opts.update(overrides)
        self.options = ServerOptions.model_validate(opts)
        if self.options.port == 0:
            self.options = self.options.model_copy(update={"port": free_port()})
        self.log_path = Path(log) if log is not None else None
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.options.host}:{self.options.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> LlamaServer:
        """Start the child and wait until `/health` says ok; BackendError if it does not."""
        if self.running:
            return self
        if self.options.slot_save_path is not None:
            self.options.slot_save_path.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab") if self.log_path else None
        cmd = [sys.executable, "-m", "rp_context.backends.llamaserver", *self.options.argv(),
               "--with-parent"]
        env = dict(os.environ)  # the child imports this same rp_context, installed or not
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self._proc = subprocess.Popen(cmd, stdout=self._log or subprocess.DEVNULL, env=env,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._proc.poll() is not None:
                self._close_log()
                where = f"; see {self.log_path}" if self.log_path else ""
                raise BackendError(f"llama.cpp server exited at start (code {self._proc.returncode}){where}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            if time.monotonic() > deadline:
                self.stop()
                raise BackendError(f"llama.cpp server did not answer on {self.url} within "
                                   f"{self.startup_timeout:.0f} s")
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL after 15 s)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._close_log()

    def restart(self) -> LlamaServer:
        """Stop and start again on the same port (the slots' caches are lost, saved files stay)."""
        self.stop()
        return self.start()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _params(ns: argparse.Namespace) -> Any:
    import xllamacpp as xl

    from ..models import resolve_model

    p = xl.CommonParams()
    p.model.path = str(resolve_model(ns.model))
    p.hostnames = [ns.host]
    p.port = ns.port
    p.n_ctx = ns.ctx_size
    p.n_parallel = ns.parallel
    p.n_batch = p.n_ubatch = ns.batch_size
    p.n_cache_reuse = ns.cache_reuse
    p.cache_ram_mib = ns.cache_ram
    p.n_gpu_layers = ns.n_gpu_layers
    p.endpoint_slots = True
    p.endpoint_props = True
    p.endpoint_metrics = True
    if ns.threads:
        p.cpuparams.n_threads = ns.threads
    if ns.threads_batch or ns.threads:
        p.cpuparams_batch.n_threads = ns.threads_batch or ns.threads
    if ns.slot_save_path:
        p.slot_save_path = str(Path(ns.slot_save_path).resolve()) + os.sep
    return p


def main(argv: list[str] | None = None) -> int:
    """Run llama.cpp's server in this process until SIGTERM or SIGINT."""
    ap = argparse.ArgumentParser(prog="python -m rp_context.backends.llamaserver",
                                 description="llama.cpp's server (from xllamacpp) on a local port")
    ap.add_argument("--model", help="GGUF model (default: the default model)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--ctx-size", type=int, default=4096, help="whole cache, split over the slots")
    ap.add_argument("--parallel", type=int, default=1, help="slots")
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--threads-batch", type=int, default=0)
    ap.add_argument("--slot-save-path", default=None, help="folder for saved slot files")
    ap.add_argument("--cache-reuse", type=int, default=0)
    ap.add_argument("--cache-ram", type=int, default=0, help="host prompt cache, MiB (0: off)")
    ap.add_argument("--n-gpu-layers", type=int, default=0)
    ap.add_argument("--with-parent", action="store_true",
                    help="stop when the process that started this one exits")
    ns = ap.parse_args(argv)
    try:
        import xllamacpp as xl
    except ImportError:
        print("llama.cpp's server needs the xllamacpp package: pip install xllamacpp", file=sys.stderr)
        return 2
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    parent = os.getppid()
    server = xl.Server(_params(ns))
    print(f"listening on http://{ns.host}:{ns.port}", file=sys.stderr, flush=True)
    while not done.wait(0.5):
        if ns.with_parent and os.getppid() != parent:
            break  # the process that started us is gone (killed): do not outlive it
    del server  # its destructor stops the HTTP loop and frees the model
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
