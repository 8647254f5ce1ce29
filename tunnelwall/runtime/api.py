"""Client for the controller's REST API of the running topology."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from tunnelwall.base.errors import TunnelwallError
from tunnelwall.base.verdict import LoggedVerdict, ResidualBlock
from tunnelwall.base.runstate import RunState, active_run


class Api:
    def __init__(self, state: RunState | None = None):
        state = state or active_run()
        if state is None or not state.api:
            raise TunnelwallError("no censored run is up (tunnelwall up TOPO)")
        self.base = f"http://127.0.0.1:{state.api.port}"
        self.token = Path(state.api.token_file).read_text().strip()

    def call(self, path: str, body: dict | None = None, timeout: float = 15.0):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method="POST" if data else "GET",
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")
            try:
                detail = json.loads(detail).get("error", detail)
            except ValueError:
                pass
            raise TunnelwallError(f"controller API {path}: {err.code} {detail}") from None
        except (urllib.error.URLError, OSError) as err:
            raise TunnelwallError(f"controller API {path}: {err}") from None

    def health(self) -> dict:
        return self.call("/api/health")

    def verdicts(self, since: float = 0.0) -> list[dict]:
        return self.call(f"/api/verdicts?since={since}")

    def blocks(self) -> list[dict]:
        return self.call("/api/blocks")

    def logged_verdicts(self, since: float = 0.0) -> list[LoggedVerdict]:
        """The verdicts since *since*, typed (the log's other records left out)."""
        return [lv for lv in map(LoggedVerdict.from_record, self.verdicts(since)) if lv is not None]

    def residual_blocks(self) -> list[ResidualBlock]:
        return [ResidualBlock.from_api(b) for b in self.blocks()]

    def clear_blocks(self) -> int:
        return self.call("/api/blocks/clear", {})["cleared"]

    def reload(self, profile: str) -> dict:
        return self.call("/api/profile", {"profile": profile})
