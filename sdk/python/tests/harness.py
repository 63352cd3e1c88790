"""Starts the real server binary on free ports with a fresh SQLite database
and a fake LINE API on loopback, for the SDK's tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "an admin password for the sdk tests"
CHANNEL_SECRET = "0123456789abcdef0123456789abcdef"
OPERATOR_KEY = "an operator key for the sdk tests, long enough"


class FakeLine:
    """A fake of the LINE Messaging API: bot info, push, reply, profiles."""

    def __init__(self) -> None:
        self.bots: dict[str, str] = {}
        self.pushed: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def answer(self, status: int, value: Any) -> None:
                body = json.dumps(value).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def route(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                body: dict[str, Any] = json.loads(self.rfile.read(length)) if length else {}
                bot = fake.bots.get((self.headers.get("authorization") or "").removeprefix("Bearer "))
                path = self.path.split("?")[0]
                if bot is None:
                    return self.answer(401, {"message": "Authentication failed."})
                if method == "GET" and path == "/v2/bot/info":
                    info = {"userId": bot, "basicId": "@123abcde", "displayName": "SDK Support"}
                    return self.answer(200, {**info, "chatMode": "chat", "markAsReadMode": "manual"})
                if method == "POST" and path in ("/v2/bot/message/push", "/v2/bot/message/reply"):
                    fake.pushed.append(body)
                    sent = [{"id": str(uuid.uuid4()), "quoteToken": "q"} for _ in body["messages"]]
                    return self.answer(200, {"sentMessages": sent})
                if method == "GET" and path.startswith("/v2/bot/profile/"):
                    return self.answer(200, {"userId": path.rsplit("/", 1)[-1], "displayName": "Hanako"})
                if method == "GET" and path == "/v2/bot/message/quota":
                    return self.answer(200, {"type": "none"})
                if method == "GET" and path == "/v2/bot/message/quota/consumption":
                    return self.answer(200, {"totalUsage": 0})
                self.answer(404, {"message": "Not found"})

            def do_GET(self) -> None:
                self.route("GET")

            def do_POST(self) -> None:
                self.route("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _binary() -> str:
    if os.environ.get("MADOGUCHI_BIN"):
        return os.environ["MADOGUCHI_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR") or str(Path.home() / ".cache" / "madoguchi-target")
    return str(Path(target) / "debug" / "madoguchi")


class RunningServer:
    """The server binary, running."""

    def __init__(self) -> None:
        self.line = FakeLine()
        self.dir = tempfile.mkdtemp(prefix="madoguchi-sdk-")
        http, grpc, metrics = _free_port(), _free_port(), _free_port()
        self.http_url = f"http://127.0.0.1:{http}"
        self.grpc_target = f"127.0.0.1:{grpc}"
        # Nothing of the caller's own MADOGUCHI_* settings leaks in.
        inherited = {name: value for name, value in os.environ.items() if not name.startswith("MADOGUCHI_")}
        environment = {
            **inherited,
            "MADOGUCHI_DATABASE_URL": f"sqlite://{self.dir}/madoguchi.db?mode=rwc",
            "MADOGUCHI_DATA_DIR": self.dir,
            "MADOGUCHI_HTTP_ADDR": f"127.0.0.1:{http}",
            "MADOGUCHI_GRPC_ADDR": self.grpc_target,
            "MADOGUCHI_METRICS_ADDR": f"127.0.0.1:{metrics}",
            "MADOGUCHI_PUBLIC_BASE_URL": self.http_url,
            "MADOGUCHI_BOOTSTRAP_ADMIN_EMAIL": ADMIN_EMAIL,
            "MADOGUCHI_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "MADOGUCHI_LINE_API_BASE": self.line.url,
            "MADOGUCHI_LINE_DATA_BASE": self.line.url,
            "MADOGUCHI_PLATFORM_OPERATOR_KEY": OPERATOR_KEY,
            "MADOGUCHI_SHUTDOWN_GRACE_SECONDS": "2",
        }
        self.log = open(Path(self.dir) / "server.log", "wb")
        self.process = subprocess.Popen([_binary()], cwd=self.dir, env=environment, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.output()}")
            try:
                if httpx.get(f"{self.http_url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not become ready: {self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        return (Path(self.dir) / "server.log").read_text(errors="replace")

    def deliver_line(self, channel_id: str, bot_user_id: str, events: list[dict[str, Any]]) -> int:
        """Posts a LINE webhook signed with the channel secret; returns the status."""
        body = json.dumps({"destination": bot_user_id, "events": events}).encode()
        signature = base64.b64encode(hmac.new(CHANNEL_SECRET.encode(), body, hashlib.sha256).digest()).decode()
        response = httpx.post(
            f"{self.http_url}/webhooks/line/{channel_id}",
            content=body,
            headers={"content-type": "application/json", "x-line-signature": signature},
        )
        return response.status_code

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)
        self.log.close()
        self.line.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def text_event(user: str, message_id: str, text: str) -> dict[str, Any]:
    """A LINE text message event from ``user``."""
    return {
        "type": "message",
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "webhookEventId": f"01PY{message_id}",
        "deliveryContext": {"isRedelivery": False},
        "source": {"type": "user", "userId": user},
        "replyToken": f"reply-{message_id}",
        "message": {"id": message_id, "type": "text", "quoteToken": "q", "text": text},
    }
