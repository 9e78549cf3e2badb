"""Can the Hugging Face hub be reached? Decided once per process, in about a second.

One TCP connection to the host of ``HF_ENDPOINT`` (default huggingface.co), or to the HTTPS proxy
when one is set, with a short timeout. Without it, an offline start retried every file of every
missing checkpoint for minutes; with it, a hub that cannot be reached counts as ``HF_HUB_OFFLINE=1``
(`playground.core.weights.hub_offline`): a missing checkpoint fails at once with the command that
fetches it, and cached ones load without a request.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from urllib.parse import urlsplit

from playground.core.forks import fork_safe

CONNECT_TIMEOUT_S = 1.5
DEFAULT_ENDPOINT = "https://huggingface.co"

log = logging.getLogger(__name__)
_lock = fork_safe(threading.Lock())
_answers: dict[tuple[str, int], bool] = {}


def hub_endpoint() -> str:
    """``HF_ENDPOINT``, or huggingface.co."""
    return os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or DEFAULT_ENDPOINT


def hub_host() -> str:
    """The host name a user knows the hub by, for messages (``huggingface.co``, ``127.0.0.1:9``)."""
    return urlsplit(hub_endpoint()).netloc or hub_endpoint()


def _address() -> tuple[str, int]:
    """Where the check connects: the HTTPS proxy if one is set, else the endpoint's host and port."""
    endpoint = urlsplit(hub_endpoint())
    proxy = (os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")) if endpoint.scheme == "https" else None
    target = urlsplit(proxy if proxy and "//" in proxy else f"http://{proxy}") if proxy else endpoint
    default_port = 443 if target.scheme == "https" else 80
    try:
        port = target.port or default_port
    except ValueError:
        port = default_port
    return target.hostname or "", port


def hub_reachable() -> bool:
    """True when one connection to the hub (or its proxy) opens within `CONNECT_TIMEOUT_S`; asked
    once per address and remembered. A hub found unreachable also turns on huggingface_hub's
    offline mode, so the libraries read their cache without retrying the network."""
    address = _address()
    with _lock:
        if address not in _answers:
            _answers[address] = _connects(address)
            if not _answers[address]:
                log.warning(
                    "the Hugging Face hub (%s) cannot be reached: working offline, as with HF_HUB_OFFLINE=1", hub_host()
                )
                _library_offline()
        return _answers[address]


def forget() -> None:
    """Ask again next time (tests)."""
    with _lock:
        _answers.clear()


def _connects(address: tuple[str, int]) -> bool:
    """One connection attempt, name lookup included (the socket's timeout does not bound a DNS
    lookup, so the attempt runs in a thread that is waited for at most `CONNECT_TIMEOUT_S` + 0.5 s)."""
    host, port = address
    if not host:
        return False
    opened: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
                opened.append(True)
        except OSError:  # refused, timed out, no route, no such host
            pass

    thread = threading.Thread(target=attempt, name="hub-check", daemon=True)
    thread.start()
    thread.join(CONNECT_TIMEOUT_S + 0.5)
    return bool(opened)


def _library_offline() -> None:
    try:
        from huggingface_hub import constants
    except ImportError:
        return
    constants.HF_HUB_OFFLINE = True
