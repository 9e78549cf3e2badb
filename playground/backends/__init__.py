"""Where the models run when not in the app's own process: ``ray_serve`` (the Serve deployment and the
cluster it runs on), ``ray_client`` (`RayModels`, the app's side), ``serve_cli`` (``python -m
playground serve``), ``serve_bench``, and ``ray_label`` (the data engine's job on Ray Data, ``label
--backend ray``). Nothing here imports ray until it is used."""

from __future__ import annotations

import os
import sys

LOOPBACK = ("127.0.0.1", "localhost")


def before_ray(address: str | None) -> None:
    """Call before ray is imported. With no address (a new cluster here) or a loopback one:

    - every Ray process of this one-machine cluster stays on 127.0.0.1 (Ray would take the
      machine's IP, reachable from the network);
    - token authentication is on, for the cluster and for the processes that join it, with the
      token Ray keeps in ``~/.ray/auth_token`` (Ray turns it on for a new cluster by default, but a
      process joining by address must ask for it).
    """
    if address and address.rpartition(":")[0] not in LOOPBACK:
        return
    if "ray" in sys.modules and os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") != "0":
        raise RuntimeError("before_ray() must run before ray is imported")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.setdefault("RAY_AUTH_MODE", "token")
