"""Multi-process runs: joining one, agreeing across processes, and stopping when one is lost.

A run of N processes (one per host, or one per GPU) is started by running the same
`launch.py` command N times: with `--coordinator=HOST:PORT --num_processes=N --process_id=I`,
or with no flags inside a cluster that `jax.distributed.initialize()` detects by itself
(`detect_cluster`). One process needs nothing and never starts the distributed runtime.

Process 0 hosts JAX's coordination service; its key-value store carries everything here:
- `check_same`: every process runs the same config, code and devices per process (else a
  one-line ConfigError on every process before anything is trained);
- `all_gather`: small JSON values, e.g. each process's data-iterator position for a checkpoint;
- `StopRequest`: the step at which all processes stop after a SIGTERM reached some of them;
- `Watchdog`: a heartbeat per process every second; a process silent for `heartbeat_timeout_s`
  (killed, hung host, lost network), or one that failed, is named on every other process,
  which then exits with code 1 instead of waiting forever in a collective. If process 0
  itself dies, JAX's client aborts the others at once (exit 134, "Terminating process because
  the JAX distributed service detected fatal errors"; jaxlib 0.10 offers no Python hook for a
  message of ours: its missed-heartbeat callback cannot be called from Python).
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import sys
import threading
import time

from colorjax import config_lib

DEFAULT_HEARTBEAT_TIMEOUT_S = 60      # a silent process is declared lost after this long
BEAT_INTERVAL_S = 1.0
FAILED_GRACE_S = 3.0
STOP_LEAD_STEPS = 4       # processes are at most ~2 steps apart (every step is a collective)
_FOREVER_MS = 7 * 24 * 3600 * 1000    # waits need no timeout: the Watchdog bounds failures
_PREFIX = "colorjax"

_watchdog: Watchdog | None = None
_counter = 0


def _jax():
  import jax
  return jax


def process_count() -> int:
  return _jax().process_count()


def process_index() -> int:
  return _jax().process_index()


def is_primary() -> bool:
  """True on process 0: the one that writes logs, reports and prints."""
  return process_index() == 0


def _client():
  from jax._src import distributed as jax_distributed
  return jax_distributed.global_state.client


def detect_cluster() -> tuple[str, int, int] | None:
  """(environment name, process count, process id) of a cluster JAX detects, else None.

  Uses the detectors of the installed JAX (`jax._src.clusters`: Open MPI, SLURM, Kubernetes
  with the `kubernetes` package, Cloud TPU on GCE and GKE; mpi4py only on request), without
  starting anything, so that a single-process job in such a cluster stays single-process.
  """
  try:
    from jax._src import clusters
  except ImportError:
    return None
  for env in clusters.ClusterEnv._cluster_types:
    if getattr(env, "opt_in_only_method", False):
      continue
    try:
      if env.is_env_present():
        return env.__name__, int(env.get_process_count()), int(env.get_process_id())
    except Exception:     # a half-configured environment: not a cluster we can join
      continue
  return None


def join(coordinator: str | None = None, num_processes: int | None = None,
         process_id: int | None = None, heartbeat_timeout_s: int = DEFAULT_HEARTBEAT_TIMEOUT_S,
         mode: str = "train") -> int:
  """Join a multi-process run if asked to, before anything touches a JAX backend.

  Explicit: all three of `coordinator` ("HOST:PORT" of process 0), `num_processes` and
  `process_id`. Otherwise a cluster found by `detect_cluster` with more than one process.
  Otherwise nothing (one process). `mode` other than train/study runs in one process: in a
  detected cluster every process but 0 returns -1 (nothing to do). Returns the process count.
  Raises ConfigError (one line) for incomplete or inconsistent flags.
  """
  given = {"--coordinator": coordinator, "--num_processes": num_processes,
           "--process_id": process_id}
  missing = [k for k, v in given.items() if v is None]
  if len(missing) not in (0, 3):
    raise config_lib.ConfigError(
        f"{', '.join(missing)}: missing; a multi-process run needs all three of --coordinator="
        "HOST:PORT, --num_processes=N and --process_id=I (or none, to run alone or inside a "
        "cluster that JAX detects)")
  multi = mode in ("train", "study")
  if not missing:
    if not multi and num_processes > 1:
      raise config_lib.ConfigError(
          f"--num_processes={num_processes}: --mode={mode} runs in one process; drop "
          "--coordinator, --num_processes and --process_id")
    if num_processes < 1 or not 0 <= process_id < num_processes:
      raise config_lib.ConfigError(
          f"--process_id={process_id}, --num_processes={num_processes}: need "
          "0 <= process_id < num_processes")
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit():
      raise config_lib.ConfigError(f"--coordinator={coordinator}: expected HOST:PORT of process 0")
    if num_processes == 1:
      return 1
    _initialize(dict(coordinator_address=coordinator, num_processes=num_processes,
                     process_id=process_id), heartbeat_timeout_s)
    return num_processes
  cluster = detect_cluster()
  if cluster is None or cluster[1] < 2:
    return 1
  if not multi:
    return 1 if cluster[2] == 0 else -1
  _initialize({}, heartbeat_timeout_s, where=cluster[0])
  return cluster[1]


def _initialize(args: dict, heartbeat_timeout_s: int, where: str = "") -> None:
  jax = _jax()
  if heartbeat_timeout_s < 2:
    raise config_lib.ConfigError(f"--heartbeat_timeout={heartbeat_timeout_s}: at least 2 seconds")
  try:
    # JAX's own heartbeat is the backstop behind the Watchdog (it aborts a process with a
    # C++ stack trace), so it is set longer than the Watchdog's.
    jax.distributed.initialize(**args, initialization_timeout=300,
                               heartbeat_timeout_seconds=heartbeat_timeout_s + 30,
                               shutdown_timeout_seconds=max(heartbeat_timeout_s, 30))
  except Exception as e:
    target = (f"--coordinator={args['coordinator_address']}" if args else
              f"{where} (detected; --coordinator etc. override it)")
    raise config_lib.ConfigError(f"{target}: could not join the run ({_first_line(e)})") from None
  global _watchdog
  _watchdog = Watchdog(heartbeat_timeout_s)
  _watchdog.start()
  atexit.register(_watchdog.stop)    # runs before JAX's own shutdown (registered earlier)


def _first_line(e: BaseException) -> str:
  lines = [l.strip() for l in str(e).splitlines() if l.strip()]
  return f"{type(e).__name__}: {lines[0][:300]}" if lines else type(e).__name__


def _next_key(name: str) -> str:
  """A key unique to this call; every process makes the same calls in the same order."""
  global _counter
  _counter += 1
  return f"{_PREFIX}/{name}/{_counter}"


def all_gather(name: str, value) -> list:
  """Every process's JSON-able `value`, in process order (one process: `[value]`)."""
  n = process_count()
  if n == 1:
    return [value]
  client, key = _client(), _next_key(name)
  client.key_value_set(f"{key}/{process_index()}", json.dumps(value))
  return [json.loads(client.blocking_key_value_get(f"{key}/{i}", _FOREVER_MS)) for i in range(n)]


def barrier(name: str) -> None:
  """Wait until every process gets here (a lost process is the Watchdog's to report)."""
  if process_count() > 1:
    _client().wait_at_barrier(_next_key(name).replace("/", "_"), _FOREVER_MS)


def code_version() -> str:
  """sha256 over colorjax's sources and the versions of the libraries that compute."""
  import importlib.metadata
  h = hashlib.sha256()
  root = os.path.dirname(os.path.abspath(__file__))
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
    for name in sorted(f for f in filenames if f.endswith(".py")):
      path = os.path.join(dirpath, name)
      h.update(os.path.relpath(path, root).encode())
      with open(path, "rb") as f:
        h.update(f.read())
  for package in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain"):
    try:
      h.update(f"{package}={importlib.metadata.version(package)}".encode())
    except importlib.metadata.PackageNotFoundError:
      pass
  return h.hexdigest()


def check_same(config_json: str) -> None:
  """Raise ConfigError on every process unless all run the same config, code and devices."""
  if process_count() == 1:
    return
  jax = _jax()
  mine = {"config": hashlib.sha256(config_json.encode()).hexdigest(), "code": code_version(),
          "local_devices": jax.local_device_count()}
  everyone = all_gather("check", mine)
  first = everyone[0]
  for i, other in enumerate(everyone[1:], start=1):
    if other["config"] != first["config"]:
      raise config_lib.ConfigError(
          f"--config: process {i} runs a different config than process 0 (sha256 "
          f"{other['config'][:12]} vs {first['config'][:12]}); start every process with the "
          "same --config file and --config.* flags")
    if other["code"] != first["code"]:
      raise config_lib.ConfigError(
          f"process {i} runs different code than process 0 (colorjax sources or jax/flax/"
          f"optax/orbax/grain versions; sha256 {other['code'][:12]} vs {first['code'][:12]}); "
          "install the same version everywhere")
    if other["local_devices"] != first["local_devices"]:
      raise config_lib.ConfigError(
          f"process {i} has {other['local_devices']} devices and process 0 has "
          f"{first['local_devices']}: every process needs the same number of devices")


class StopRequest:
  """The step at which every process stops, once a SIGTERM/SIGINT reached any of them.

  The first process to get a signal at step s publishes s + STOP_LEAD_STEPS; every process
  reads it between steps (one key-value read). Processes are at most about two steps apart
  (each step is a collective), so all see the published step before they pass it.
  """

  def __init__(self, name: str):
    self.key, self.at = f"{_PREFIX}/stop/{name}", None

  def should_stop(self, step: int, requested: bool) -> bool:
    if process_count() == 1:
      return requested
    if self.at is None:
      client = _client()
      if requested:
        try:
          client.key_value_set(self.key, str(step + STOP_LEAD_STEPS))
        except Exception:     # another process published first: its step stands
          pass
      try:
        self.at = int(client.key_value_try_get(self.key))
      except Exception:       # not published: keep training
        return False
    return step >= self.at


class Watchdog:
  """Heartbeats through the coordinator; ends this process when another one is lost.

  Every BEAT_INTERVAL_S each process bumps its counter under `colorjax/beat/<id>` and reads
  all counters. A counter unchanged for `timeout_s` (by this process's clock), a process that
  reported a failure, or a coordinator unreachable for `timeout_s`, ends this process with a
  one-line message naming the lost process and exit code 1: a dead process is noticed within
  timeout_s + BEAT_INTERVAL_S. A process that finished cleanly marks itself "done".
  """

  def __init__(self, timeout_s: float):
    self.timeout_s = timeout_s
    self.n, self.me = process_count(), process_index()
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, name="colorjax-watchdog", daemon=True)
    self._seen: dict[int, tuple[str, float]] = {}
    self._beat = 0

  def start(self) -> None:
    self._thread.start()

  def stop(self, status: str = "done") -> None:
    """Stop beating; others will not report this process as lost ("done")."""
    if self._stop.is_set():
      return
    self._stop.set()
    try:
      _client().key_value_set(f"{_PREFIX}/beat/{self.me}", status, allow_overwrite=True)
    except Exception:
      pass

  def _run(self) -> None:
    client = _client()
    last_round = time.monotonic()
    unreachable_since = None
    while not self._stop.wait(BEAT_INTERVAL_S):
      try:
        self._beat += 1
        client.key_value_set(f"{_PREFIX}/beat/{self.me}", str(self._beat), allow_overwrite=True)
        beats = dict(client.key_value_dir_get(f"{_PREFIX}/beat/"))
        unreachable_since = None
      except Exception as e:
        if self._stop.is_set():
          return
        now = time.monotonic()
        unreachable_since = unreachable_since or now
        if now - unreachable_since > self.timeout_s:
          self._lost(0, f"the coordinator (process 0) has been unreachable for "
                        f"{now - unreachable_since:.0f} s ({_first_line(e)})")
        continue
      now = time.monotonic()
      # This thread itself was held up (an overloaded host, a slow coordinator): the silence
      # it would measure is its own, so restart every other process's clock.
      stalled, last_round = now - last_round > 3 * BEAT_INTERVAL_S, now
      for i in range(self.n):
        if i == self.me:
          continue
        value = beats.get(f"{_PREFIX}/beat/{i}", "")
        if value == "done":
          continue
        last_value, since = self._seen.get(i, ("", now))
        if value != last_value or (stalled and not value.startswith("failed:")):
          self._seen[i] = (value, now)
        elif value.startswith("failed:") and now - since > FAILED_GRACE_S:
          # (after a grace period: the same error on this process is its own to report)
          self._lost(i, value[len("failed:"):].strip())
        elif now - since > self.timeout_s:
          self._lost(i, f"no heartbeat for {now - since:.0f} s (killed, hung, or its host or "
                        "network is down)")

  def _lost(self, who: int, why: str) -> None:
    if self._stop.is_set():
      return
    self.stop(f"failed: stopped because process {who} is lost")
    sys.stdout.flush()
    sys.stderr.write(
        f"\nerror: process {who} of {self.n} is lost: {why}; stopping process {self.me} too. "
        "Run the same command on every process again to resume from the last checkpoint\n")
    sys.stderr.flush()
    os._exit(1)

  def wait_for_verdict(self) -> None:
    """After an error: return once every other process has shown a sign of life since (a
    heartbeat, or a final status), or let `_run` end this process if one is lost."""
    t0 = time.monotonic()
    deadline = t0 + self.timeout_s + 2 * BEAT_INTERVAL_S
    while time.monotonic() < deadline and self._thread.is_alive():
      seen = dict(self._seen)
      if all(i in seen and (seen[i][1] > t0 + BEAT_INTERVAL_S
                            or seen[i][0].startswith(("failed:", "done")))
             for i in range(self.n) if i != self.me):
        return
      time.sleep(0.2)


def fail(message: str) -> None:
  """This process is ending with an error: tell the others at once (they stop too).

  Process 0 then waits (a few seconds at most) for the others to finish: it hosts the
  coordination service, and JAX aborts the other processes as soon as that is gone.
  """
  if _watchdog is None:
    return
  _watchdog.stop(f"failed: {message[:500]}")
  if _watchdog.me != 0:
    return
  deadline = time.monotonic() + FAILED_GRACE_S + 3 * BEAT_INTERVAL_S
  while time.monotonic() < deadline:
    try:
      beats = dict(_client().key_value_dir_get(f"{_PREFIX}/beat/"))
    except Exception:
      return
    if all(beats.get(f"{_PREFIX}/beat/{i}", "").startswith(("failed:", "done"))
           for i in range(1, _watchdog.n)):
      return
    time.sleep(0.2)


def after_error() -> None:
  """An error in a multi-process run, often a collective or checkpoint write whose peer
  died: wait until the others answer (about a second), or for the Watchdog to name the lost
  process and exit (at most the heartbeat timeout)."""
  if _watchdog is not None and not _watchdog._stop.is_set():
    _watchdog.wait_for_verdict()
