"""``python -m bot healthcheck``, for Docker's HEALTHCHECK and compose: asks the running
process's ``/healthz`` (or ``/readyz`` with ``--ready``) when it serves HTTP, else reads the
heartbeat file it rewrites every ``HEARTBEAT_INTERVAL`` seconds. A module of its own, on the
standard library alone, so that the check starts without loading aiogram.

Which port: ``WEBHOOK_PORT`` when ``WEBHOOK_URL`` is set (webhook mode and ``web``), else
``METRICS_PORT`` when set (polling mode and ``worker``), else the heartbeat file.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

__all__ = ["HEARTBEAT_FILE", "HEARTBEAT_INTERVAL", "healthcheck", "probe_url"]

HEARTBEAT_FILE = "heartbeat"  # in DATA_DIR, touched while updates are being received
HEARTBEAT_INTERVAL = 30.0
PROBE_TIMEOUT = 8.0  # below the HEALTHCHECK's --timeout
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def probe_url(settings: Any, *, ready: bool = False) -> str | None:
    """The URL the running process answers health checks on, or None (no HTTP server)."""
    port = settings.webhook_port if settings.webhook_url else settings.metrics_port
    if port is None:
        return None
    return f"http://127.0.0.1:{port}/{'readyz' if ready else 'healthz'}"


def healthcheck(settings: Any, *, ready: bool = False) -> int:
    """0 (and ``ok``) when the running bot is alive, or ready with ``ready``; else 1 and the
    reason on stderr."""
    url = probe_url(settings, ready=ready)
    if url is None:
        return _heartbeat(settings)
    try:
        with _DIRECT.open(url, timeout=PROBE_TIMEOUT) as response:
            response.read()
    except urllib.error.HTTPError as error:
        print(f"unhealthy: {url} answered {error.code}: {_reason(error.read())}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        print(f"unhealthy: no answer from {url} ({reason})", file=sys.stderr)
        return 1
    print("ok")
    return 0


def _reason(body: bytes) -> str:
    try:
        return str(json.loads(body)["reason"])
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", "replace")[:200] or "no reason given"


def _heartbeat(settings: Any) -> int:
    path = settings.data_dir / HEARTBEAT_FILE
    try:
        age = time.time() - float(path.read_text().strip())
    except (OSError, ValueError):
        print(f"unhealthy: no heartbeat in {path} (is the bot running?)", file=sys.stderr)
        return 1
    if age > 3 * HEARTBEAT_INTERVAL:
        print(f"unhealthy: last heartbeat {age:.0f} s ago", file=sys.stderr)
        return 1
    print("ok")
    return 0
