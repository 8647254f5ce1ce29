"""The controller's REST API, on 127.0.0.1 only, with a per-run token.

Every ``/api/`` call needs the token (``Authorization: Bearer TOKEN``, or
``?token=TOKEN`` for a browser). Endpoints:

* ``GET  /api/health``   switch/middlebox connected, profile, placement, the middlebox's load
                         (frames, shed past capacity under the overload policy, kernel drops)
* ``GET  /api/verdicts`` recent verdicts (``?since=EPOCH``)
* ``GET  /api/blocks``   active residual blocks with seconds left
* ``POST /api/blocks/clear`` lift them all (between the trials of ``verify --trials``)
* ``GET  /api/probes``   active probing results (fingerprint, reactions)
* ``GET  /api/events``   switch/middlebox up/down, reloads
* ``POST /api/profile``  ``{"profile": "log-only"}``: hot reload
* ``GET  /api/topology`` nodes and links, for the live view
* ``GET|POST /api/results`` tool results of ``verify`` runs, for the live view
* ``GET  /``             the live view (HTML, no external resources; ``?token=``)

Routing is a table of (method, path) in one function rather than os-ken's
WSGI router (``os_ken.app.wsgi``: ``WSGIApplication`` + ``ControllerBase``
on the Routes library). That router runs only as an os-ken application
context, listening where os-ken's global ``wsapi_host``/``wsapi_port``
options say, while this API needs a port chosen per run next to the
OpenFlow one and the token checked before any route; with a dozen fixed
paths and no path parameters, the router would add a dependency and a
second configuration path for no gain. Revisit if the API grows routes
with parameters.
"""

from __future__ import annotations

import hmac
import json
from urllib.parse import parse_qs


class RestApi:
    def __init__(self, app, port: int, token: str):
        self.app = app
        self.port = port
        self.token = token

    def serve(self) -> None:
        import eventlet
        import eventlet.wsgi
        listener = eventlet.listen(("127.0.0.1", self.port))
        eventlet.wsgi.server(listener, self.wsgi, log_output=False)

    def _authorized(self, environ) -> bool:
        header = environ.get("HTTP_AUTHORIZATION", "")
        given = header[7:] if header.startswith("Bearer ") else ""
        if not given:
            given = parse_qs(environ.get("QUERY_STRING", "")).get("token", [""])[0]
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

    def wsgi(self, environ, start_response):
        path, method = environ.get("PATH_INFO", "/"), environ.get("REQUEST_METHOD", "GET")
        query = parse_qs(environ.get("QUERY_STRING", ""))
        try:
            if path in ("/", "/index.html") and method == "GET":
                # The page carries no secret; it reads the token from its own URL.
                return self._page(start_response)
            if not path.startswith("/api/"):
                return self._reply(start_response, 404, {"error": "not found"})
            if not self._authorized(environ):
                return self._reply(start_response, 401, {"error": "missing or wrong token"})
            app = self.app
            if path == "/api/health" and method == "GET":
                return self._reply(start_response, 200, {
                    "switch_connected": app.datapath is not None, "middlebox_connected": app.middlebox is not None,
                    "profile": app.profile, "placement": app.config.placement, "fail": app.config.fail,
                    "reinstalled_verdicts": app.reinstalled, "offloaded_verdicts": app.offloaded, "retracted_verdicts": app.retracted, "middlebox_load": app.middlebox_load,
                    "watchdog_restarts": app.stalls, "middlebox_stalled": app.stalled_policy is not None,
                    "uptime": round(__import__("time").time() - app.started, 1)})
            if path == "/api/verdicts" and method == "GET":
                since = float(query.get("since", ["0"])[0])
                return self._reply(start_response, 200, [v for v in app.verdicts if v["time"] > since])
            if path == "/api/blocks" and method == "GET":
                return self._reply(start_response, 200, app.active_blocks())
            if path == "/api/blocks/clear" and method == "POST":
                return self._reply(start_response, 200, {"cleared": app.clear_blocks()})
            if path == "/api/watchdog" and method == "POST":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = json.loads(environ["wsgi.input"].read(length) or b"{}")
                return self._reply(start_response, 200, app.middlebox_stalled(float(body.get("stalled_ms", 0.0)),
                                                                              int(body.get("pid", 0))))
            if path == "/api/topology" and method == "GET":
                return self._reply(start_response, 200, app.config.topology)
            if path == "/api/results" and method == "GET":
                return self._reply(start_response, 200, list(app.results))
            if path == "/api/results" and method == "POST":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = json.loads(environ["wsgi.input"].read(length) or b"{}")
                if not isinstance(body.get("result"), dict):
                    return self._reply(start_response, 400, {"error": "give {\"result\": {...}}"})
                app.results.append(body["result"])
                return self._reply(start_response, 200, {"stored": len(app.results)})
            if path == "/api/probes" and method == "GET":
                return self._reply(start_response, 200, list(app.probes))
            if path == "/api/events" and method == "GET":
                return self._reply(start_response, 200, list(app.history))
            if path == "/api/profile" and method == "POST":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = json.loads(environ["wsgi.input"].read(length) or b"{}")
                name = body.get("profile")
                if not isinstance(name, str) or not name:
                    return self._reply(start_response, 400, {"error": "give {\"profile\": NAME}"})
                try:
                    return self._reply(start_response, 200, app.reload_profile(name))
                except RuntimeError as err:
                    return self._reply(start_response, 409, {"error": str(err)})
            return self._reply(start_response, 404, {"error": f"no {method} {path}"})
        except (ValueError, KeyError) as err:
            return self._reply(start_response, 400, {"error": str(err)})

    @staticmethod
    def _page(start_response) -> list[bytes]:
        from pathlib import Path
        data = (Path(__file__).resolve().parent / "web" / "index.html").read_bytes()
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(data))),
                                  ("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; "
                                                              "style-src 'unsafe-inline'; connect-src 'self'")])
        return [data]

    @staticmethod
    def _reply(start_response, code: int, body) -> list[bytes]:
        data = json.dumps(body, default=str).encode()
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 409: "Conflict"}[code]
        start_response(f"{code} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                                            ("Cache-Control", "no-store")])
        return [data]
