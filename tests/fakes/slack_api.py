"""A local stand-in for the slice of Slack's Web API that Vigil uses.

Tests drive the real `slack_sdk.WebClient` against it, so what is exercised is the same HTTP,
encoding and error handling as production. It is deliberately strict where Slack is strict
(auth, unknown channels, Block Kit limits, thread heads, rate limits): a fake that accepted
anything would let a message Slack rejects pass every test and then vanish in production.

Behaviour follows docs.slack.dev: errors come back as HTTP 200 with `{"ok": false, "error": ...}`,
except rate limiting, which is HTTP 429 with a `Retry-After` header in seconds. Message metadata
is stored with a message and returned by `conversations.history` and `conversations.replies`
only with `include_all_metadata`; `chat.update`, `conversations.history` and
`conversations.replies` take channel IDs, not names. `conversations.replies` answers the parent
first, then its replies oldest first, paged by `limit` and an opaque `cursor`, and
`thread_not_found` for a ts that is not a message of the channel.
An incoming webhook (`webhook_url`) answers `ok` as text, or an HTTP error with a text code.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.http import FakeHTTPServer, Reply, Request

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS = 25
MAX_BUTTON_TEXT = 75
MAX_URL = 3000
MAX_MESSAGE_TEXT = 40000
WEBHOOK_SECRET = "T0FAKE000/B0FAKE000/w3bh00ks3cr3tV4lu3xyz"
DEFAULT_CHANNELS = frozenset({"#ml-oncall", "#ml-slo", "C0123"})
_BLOCK_TYPES = frozenset(
    {"section", "header", "context", "divider", "actions", "image", "rich_text", "markdown"}
)
_TEXT_TYPES = frozenset({"plain_text", "mrkdwn"})
_EVENT_TYPE = re.compile(r"^[a-z0-9_]{1,255}$")


@dataclass
class RecordedRequest:
    """One HTTP request as the fake saw it, including the ones it refused."""

    api_method: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int = 0
    response: dict[str, Any] = field(default_factory=dict)


class _ApiError(Exception):
    """An `ok: false` answer; `errors` mirrors the JSON-pointer details Slack adds."""

    def __init__(self, error: str, errors: list[str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.errors = errors or []


class FakeSlack(FakeHTTPServer):
    """Context manager serving a fake Slack Web API on 127.0.0.1 (port picked by the OS).

    Knobs: `fail_next(n, status)` answers the next n calls with a server error,
    `rate_limit_next(n, retry_after)` with 429, `down = True` drops every connection unanswered,
    `delay` sleeps before answering (to trip client timeouts), `gate` (a `threading.Event`)
    holds every answer until it is set, as a server that hangs does; `after_answer(method)` is
    called once an answer has been written (the fault suite kills Vigil there, in the window
    between Slack's answer and Vigil's commit). Incoming-webhook posts land in
    `webhook_channel`.
    """

    name = "fake-slack"

    def __init__(
        self, token: str = "xoxb-test-token", channels: set[str] | frozenset[str] | None = None
    ) -> None:
        super().__init__()
        self.token = token
        self.channels = set(DEFAULT_CHANNELS if channels is None else channels)
        self.messages: list[dict[str, Any]] = []
        self.files: dict[str, dict[str, Any]] = {}
        """Uploads by file ID: name, declared length, bytes received, and where shared."""
        self.requests: list[RecordedRequest] = []
        self.delay = 0.0
        self.webhook_channel = "#ml-oncall"
        self._fail: list[int] = []
        self._rate_limit: list[float | str] = []
        self._seq = 0
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """What to pass as `WebClient(base_url=...)`; ends with '/' as the SDK expects."""
        return self.origin + "/api/"

    @property
    def webhook_url(self) -> str:
        """An incoming-webhook URL for `webhook_channel`; the path is the credential."""
        return self.base_url.removesuffix("/api/") + "/services/" + WEBHOOK_SECRET

    def answer(self, request: Request) -> Reply | None:
        if self.delay:
            time.sleep(self.delay)
        parts = urlsplit(request.path)
        api_method = parts.path.removeprefix("/api/")
        headers = request.headers
        if parts.path.startswith("/services/"):
            code, hook_headers, text = self._webhook(
                parts.path, request.header("Content-Type"), request.raw
            )
            self._record(
                api_method="webhook",
                headers=headers,
                body=_json_or_empty(request.raw),
                status=code,
                response={"raw": text},
            )
            return Reply(code, text, hook_headers)
        status: int
        reply: dict[str, Any] | str
        extra: dict[str, str] = {}
        body: dict[str, Any] = {}
        if parts.path.startswith("/upload/"):
            status, reply = self._receive_upload(parts.path, request.raw)
        elif not parts.path.startswith("/api/"):
            status, reply = 404, "not found"
        else:
            try:
                body = _parse_body(request.header("Content-Type"), request.raw, parts.query)
            except _ApiError as err:
                status, reply = 200, {"ok": False, "error": err.error}
            else:
                status, extra, reply = self._handle(api_method, headers, body)
        self._record(
            api_method=api_method,
            headers=headers,
            body=body,
            status=status,
            response=reply if isinstance(reply, dict) else {"raw": reply},
        )
        return Reply(status, reply, extra)

    def answered(self, request: Request) -> str:
        return urlsplit(request.path).path.removeprefix("/api/")

    def _record(self, **request: Any) -> None:
        with self._lock:
            self.requests.append(RecordedRequest(**request))

    # -- knobs -----------------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 503) -> None:
        """Answer the next `n` calls with HTTP `status` and a non-JSON body, like a proxy would."""
        with self._lock:
            self._fail.extend([status] * n)

    def rate_limit_next(self, n: int, retry_after: float | str = 1) -> None:
        """Answer the next `n` calls with 429, `ratelimited` and `Retry-After: retry_after`
        (seconds, or a string such as an HTTP date, sent as it is)."""
        with self._lock:
            self._rate_limit.extend([retry_after] * n)

    # -- inspection ------------------------------------------------------------------------

    def thread(self, ts: str) -> list[dict[str, Any]]:
        """The replies under the head message `ts`, oldest first."""
        with self._lock:
            return [m for m in self.messages if m.get("thread_ts") == ts and m["ts"] != ts]

    def heads(self) -> list[dict[str, Any]]:
        """Top-level messages (not thread replies), oldest first."""
        with self._lock:
            return [m for m in self.messages if m.get("thread_ts") in (None, m["ts"])]

    def channel_id(self, channel: str) -> str | None:
        """The ID Slack answers with for a configured channel, given its name, bare name or ID."""
        for name in self.channels:
            cid = _id_for(name)
            if channel in (name, cid) or (name.startswith("#") and channel == name[1:]):
                return cid
        return None

    # -- request handling (called from server threads) -------------------------------------

    def _next_ts(self) -> str:
        self._seq += 1
        micros = self._seq * 100
        return f"{1_700_000_000 + micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _handle(
        self, api_method: str, headers: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, dict[str, str], dict[str, Any] | str]:
        """Return (status, extra headers, JSON body or raw text) for one call."""
        with self._lock:
            if self._rate_limit:
                retry_after = self._rate_limit.pop(0)
                return (
                    429,
                    {"Retry-After": _seconds(retry_after)},
                    {"ok": False, "error": "ratelimited"},
                )
            if self._fail:
                return self._fail.pop(0), {}, "upstream unavailable"
            try:
                self._authorize(headers, body)
                result = self._dispatch(api_method, body)
            except _ApiError as err:
                answer: dict[str, Any] = {"ok": False, "error": err.error}
                if err.errors:
                    answer["errors"] = err.errors
                    answer["response_metadata"] = {"messages": [f"[ERROR] {e}" for e in err.errors]}
                return 200, {}, answer
            return 200, {}, {"ok": True, **result}

    def _authorize(self, headers: dict[str, str], body: dict[str, Any]) -> None:
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        token = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else ""
        # Slack also takes the token as a POST parameter (form-encoded bodies only).
        token = token or str(body.get("token") or "")
        if not token:
            raise _ApiError("not_authed")
        if token != self.token:
            raise _ApiError("invalid_auth")

    def _dispatch(self, api_method: str, body: dict[str, Any]) -> dict[str, Any]:
        if api_method == "chat.postMessage":
            return self._post_message(body)
        if api_method == "chat.update":
            return self._update(body)
        if api_method == "conversations.history":
            return self._history(body)
        if api_method == "conversations.list":
            return self._list(body)
        if api_method == "conversations.replies":
            return self._replies(body)
        if api_method == "files.getUploadURLExternal":
            return self._upload_url(body)
        if api_method == "files.completeUploadExternal":
            return self._complete_upload(body)
        if api_method == "auth.test":
            return {
                "url": "https://fake.slack.test/",
                "team": "Fake",
                "user": "vigil",
                "team_id": "T0FAKE000",
                "user_id": "U0FAKE000",
                "bot_id": "B0FAKE000",
            }
        raise _ApiError("unknown_method")

    def _resolve_channel(self, body: dict[str, Any]) -> str:
        channel = str(body.get("channel") or "")
        channel_id = self.channel_id(channel) if channel else None
        if channel_id is None:
            raise _ApiError("channel_not_found")
        return channel_id

    def _channel_by_id(self, body: dict[str, Any]) -> str:
        """Methods that read or edit history take an ID; a `#name` is not found, as in Slack."""
        channel = str(body.get("channel") or "")
        if channel not in {_id_for(name) for name in self.channels}:
            raise _ApiError("channel_not_found")
        return channel

    def _post_message(self, body: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._resolve_channel(body)
        text, blocks = _content(body)
        meta = _metadata(body.get("metadata"))
        thread_ts = body.get("thread_ts")
        if thread_ts:
            head = self._find(channel_id, str(thread_ts))
            if head is None:
                raise _ApiError("thread_not_found")
            thread_ts = head.get("thread_ts") or head["ts"]
        ts = self._next_ts()
        message: dict[str, Any] = {
            "type": "message",
            "channel": str(body["channel"]),
            "channel_id": channel_id,
            "ts": ts,
            "thread_ts": thread_ts or None,
            "text": text,
            "blocks": blocks,
            "reply_broadcast": _truthy(body.get("reply_broadcast")),
            "bot_id": "B0FAKE000",
            "metadata": meta,
        }
        self.messages.append(message)
        return {"channel": channel_id, "ts": ts, "message": _public(message, metadata=True)}

    def _update(self, body: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._channel_by_id(body)
        message = self._find(channel_id, str(body.get("ts") or ""))
        if message is None:
            raise _ApiError("message_not_found")
        text, blocks = _content(body)
        if body.get("metadata") is not None:
            message["metadata"] = _metadata(body["metadata"])
        message["text"], message["blocks"] = text, blocks
        message["edited"] = {"user": "U0FAKE000", "ts": self._next_ts()}
        return {
            "channel": channel_id,
            "ts": message["ts"],
            "text": text,
            "message": _public(message, metadata=True),
        }

    def _list(self, body: dict[str, Any]) -> dict[str, Any]:
        channels = [
            {"id": _id_for(name), "name": name.removeprefix("#"), "is_channel": True}
            for name in sorted(self.channels)
            if name.startswith("#")
        ]
        return {"channels": channels, "response_metadata": {"next_cursor": ""}}

    def _history(self, body: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._channel_by_id(body)
        with_metadata = _truthy(body.get("include_all_metadata"))
        try:
            limit = int(body.get("limit") or 100)
        except (TypeError, ValueError) as err:
            raise _ApiError("invalid_arguments") from err
        # Like Slack: newest first, thread replies only when broadcast to the channel.
        heads = [
            m
            for m in self.messages
            if m["channel_id"] == channel_id
            and (m["thread_ts"] in (None, m["ts"]) or m["reply_broadcast"])
        ]
        newest_first = sorted(heads, key=lambda m: float(m["ts"]), reverse=True)
        return {
            "messages": [_public(m, metadata=with_metadata) for m in newest_first[:limit]],
            "has_more": len(newest_first) > limit,
        }

    def _replies(self, body: dict[str, Any]) -> dict[str, Any]:
        """A thread: its parent, then replies oldest first (Slack's order), in pages."""
        channel_id = self._channel_by_id(body)
        ts = str(body.get("ts") or "")
        if not ts:
            raise _ApiError("invalid_arguments")
        parent = self._find(channel_id, ts)
        if parent is None:
            raise _ApiError("thread_not_found")
        head_ts = parent.get("thread_ts") or parent["ts"]
        with_metadata = _truthy(body.get("include_all_metadata"))
        try:
            limit = max(1, min(1000, int(body.get("limit") or 1000)))
            start = int(str(body.get("cursor") or "0").removeprefix("c"))
        except (TypeError, ValueError) as err:
            raise _ApiError(
                "invalid_cursor" if body.get("cursor") else "invalid_arguments"
            ) from err
        thread = [
            m
            for m in self.messages
            if m["channel_id"] == channel_id and (m["ts"] == head_ts or m["thread_ts"] == head_ts)
        ]
        thread.sort(key=lambda m: (m["ts"] != head_ts, float(m["ts"])))
        page = thread[start : start + limit]
        more = start + limit < len(thread)
        return {
            "messages": [_public(m, metadata=with_metadata) for m in page],
            "has_more": more,
            "response_metadata": {"next_cursor": f"c{start + limit}" if more else ""},
        }

    def _webhook(self, path: str, content_type: str, raw: bytes) -> tuple[int, dict[str, str], str]:
        """An incoming-webhook post: text answers, as Slack gives them (`ok`, `no_service`)."""
        with self._lock:
            if self._rate_limit:
                return 429, {"Retry-After": _seconds(self._rate_limit.pop(0))}, "rate_limited"
            if self._fail:
                return self._fail.pop(0), {}, "upstream unavailable"
            if path != "/services/" + WEBHOOK_SECRET:
                return 404, {}, "no_service"
            if not content_type.startswith("application/json"):
                return 400, {}, "invalid_payload"
            try:
                body = json.loads(raw.decode("utf-8"))
                if not isinstance(body, dict):
                    raise ValueError("not an object")
                text, blocks = _content(body)
            except (UnicodeDecodeError, ValueError):
                return 400, {}, "invalid_payload"
            except _ApiError as err:
                return 400, {}, err.error
            channel_id = self.channel_id(self.webhook_channel) or self.webhook_channel
            message = {
                "type": "message",
                "channel": self.webhook_channel,
                "channel_id": channel_id,
                "ts": self._next_ts(),
                "thread_ts": None,
                "text": text,
                "blocks": blocks,
                "reply_broadcast": False,
                "bot_id": "B0FAKE000",
                "metadata": None,
                "via": "webhook",
            }
            self.messages.append(message)
            return 200, {}, "ok"

    # -- files, the way slack-sdk's files_upload_v2 sends them: URL, raw POST, complete ------

    def _upload_url(self, body: dict[str, Any]) -> dict[str, Any]:
        filename = str(body.get("filename") or "")
        try:
            length = int(body.get("length") or 0)
        except (TypeError, ValueError) as err:
            raise _ApiError("invalid_arguments") from err
        if not filename or length <= 0:
            raise _ApiError("invalid_arguments")
        file_id = f"F{len(self.files) + 1:08d}"
        self.files[file_id] = {"name": filename, "length": length, "content": None}
        origin = self.base_url.removesuffix("/api/")
        return {"upload_url": f"{origin}/upload/v1/{file_id}", "file_id": file_id}

    def _receive_upload(self, path: str, raw: bytes) -> tuple[int, str]:
        with self._lock:
            upload = self.files.get(path.rsplit("/", 1)[-1])
            if upload is None:
                return 404, "not found"
            upload["content"] = raw
            return 200, f"OK - {len(raw)}"

    def _complete_upload(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            items = json.loads(str(body.get("files") or ""))
        except json.JSONDecodeError as err:
            raise _ApiError("invalid_arguments") from err
        channel = str(body.get("channel_id") or "")
        # Like Slack, `channel_id` takes an ID: a `#name` is not found.
        if channel and self.channel_id(channel) != channel:
            raise _ApiError("channel_not_found")
        thread_ts = body.get("thread_ts")
        if thread_ts and self._find(channel, str(thread_ts)) is None:
            raise _ApiError("thread_not_found")
        done = []
        for item in items if isinstance(items, list) else []:
            upload = self.files.get(str(item.get("id")))
            if upload is None or upload["content"] is None:
                raise _ApiError("file_not_found")
            if len(upload["content"]) != upload["length"]:
                raise _ApiError("file_upload_size_mismatch")
            upload.update(
                title=item.get("title"),
                channel_id=channel or None,
                thread_ts=thread_ts,
                initial_comment=body.get("initial_comment"),
            )
            done.append({"id": item["id"], "title": item.get("title"), "name": upload["name"]})
        if not done:
            raise _ApiError("invalid_arguments")
        if channel:
            # Sharing posts a message holding the files (in the thread when one is given), as
            # Slack does; conversations.replies then lists it.
            self.messages.append(
                {
                    "type": "message",
                    "channel": channel,
                    "channel_id": channel,
                    "ts": self._next_ts(),
                    "thread_ts": str(thread_ts) if thread_ts else None,
                    "text": str(body.get("initial_comment") or ""),
                    "blocks": [],
                    "reply_broadcast": False,
                    "bot_id": "B0FAKE000",
                    "metadata": None,
                    "files": [dict(f) for f in done],
                    "upload": True,
                }
            )
        return {"files": done}

    def _find(self, channel_id: str, ts: str) -> dict[str, Any] | None:
        return next(
            (m for m in self.messages if m["channel_id"] == channel_id and m["ts"] == ts), None
        )


def _id_for(name: str) -> str:
    if not name.startswith("#"):
        return name
    return "C" + "".join(ch for ch in name[1:].upper() if ch.isalnum())[:10].ljust(8, "0")


def _content(body: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    text = str(body.get("text") or "")
    blocks_raw = body.get("blocks")
    if isinstance(blocks_raw, str):
        try:
            blocks_raw = json.loads(blocks_raw)
        except json.JSONDecodeError as err:
            raise _ApiError("invalid_blocks_format") from err
    blocks: list[dict[str, Any]] = []
    if blocks_raw is not None:
        if not isinstance(blocks_raw, list):
            raise _ApiError("invalid_blocks_format")
        _validate_blocks(blocks_raw)
        blocks = blocks_raw
    if not text and not blocks:
        raise _ApiError("no_text")
    if len(text) > MAX_MESSAGE_TEXT:
        raise _ApiError("msg_too_long")
    return text, blocks


def _metadata(raw: Any) -> dict[str, Any] | None:
    """Slack's message metadata: an `event_type` name and an `event_payload` object."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as err:
            raise _ApiError("invalid_metadata_format") from err
    if not isinstance(raw, dict):
        raise _ApiError("invalid_metadata_format")
    event_type, payload = raw.get("event_type"), raw.get("event_payload")
    if not isinstance(event_type, str) or not _EVENT_TYPE.match(event_type):
        raise _ApiError("invalid_metadata_schema")
    if not isinstance(payload, dict):
        raise _ApiError("invalid_metadata_schema")
    return {"event_type": event_type, "event_payload": payload}


def _check_actions(block: dict[str, Any], where: str) -> list[str]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_ACTIONS:
        return [f"must have 1 to {MAX_ACTIONS} items [json-pointer:{where}/elements]"]
    problems: list[str] = []
    action_ids: set[str] = set()
    for j, element in enumerate(elements):
        at = f"{where}/elements/{j}"
        if not isinstance(element, dict) or element.get("type") != "button":
            problems.append(f"unsupported type [json-pointer:{at}/type]")
            continue
        problems += _check_text(element.get("text"), f"{at}/text", MAX_BUTTON_TEXT, plain=True)
        url = element.get("url")
        if url is not None and (
            not isinstance(url, str) or not url.startswith(("http://", "https://"))
        ):
            problems.append(f"must be a valid URL [json-pointer:{at}/url]")
        elif isinstance(url, str) and len(url) > MAX_URL:
            problems.append(f"must be less than {MAX_URL + 1} characters [json-pointer:{at}/url]")
        action_id = element.get("action_id")
        if action_id is not None and action_id in action_ids:
            problems.append(f"action_id already exists [json-pointer:{at}/action_id]")
        action_ids.add(str(action_id))
    return problems


def _validate_blocks(blocks: list[Any]) -> None:
    problems: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        if not isinstance(block, dict) or block.get("type") not in _BLOCK_TYPES:
            problems.append(f"unsupported type [json-pointer:{where}/type]")
            continue
        kind = block["type"]
        if kind == "header":
            problems += _check_text(block.get("text"), f"{where}/text", MAX_HEADER_TEXT, plain=True)
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"must provide text or fields [json-pointer:{where}]")
            if "text" in block:
                problems += _check_text(block["text"], f"{where}/text", MAX_SECTION_TEXT)
            fields = block.get("fields", [])
            if not isinstance(fields, list) or len(fields) > MAX_FIELDS:
                problems.append(
                    f"no more than {MAX_FIELDS} items allowed [json-pointer:{where}/fields]"
                )
            else:
                for j, item in enumerate(fields):
                    problems += _check_text(item, f"{where}/fields/{j}", MAX_FIELD_TEXT)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
                problems.append(f"must have 1 to 10 items [json-pointer:{where}/elements]")
            else:
                for j, element in enumerate(elements):
                    if isinstance(element, dict) and element.get("type") in _TEXT_TYPES:
                        problems += _check_text(element, f"{where}/elements/{j}", MAX_SECTION_TEXT)
        elif kind == "actions":
            problems += _check_actions(block, where)
    if problems:
        raise _ApiError("invalid_blocks", problems)


def _check_text(obj: Any, where: str, limit: int, *, plain: bool = False) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in _TEXT_TYPES:
        return [f"must be a text object [json-pointer:{where}]"]
    if plain and obj["type"] != "plain_text":
        return [f"must be plain_text [json-pointer:{where}/type]"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"must be more than 0 characters [json-pointer:{where}/text]"]
    if len(text) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{where}/text]"]
    return []


def _public(message: dict[str, Any], *, metadata: bool = False) -> dict[str, Any]:
    """The message as Slack returns it: without the fake's bookkeeping or empty keys, and with
    its metadata only where the caller asked for it."""
    hidden = {"channel", "channel_id", "reply_broadcast", "via"}
    if not metadata:
        hidden.add("metadata")
    return {k: v for k, v in message.items() if k not in hidden and v is not None}


def _truthy(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def _seconds(value: float | str) -> str:
    """A number of seconds as Slack writes it; a string (an HTTP date) goes out as it is."""
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)


def _parse_body(content_type: str, raw: bytes, query: str) -> dict[str, Any]:
    body: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query).items()}
    if not raw:
        return body
    if content_type.startswith("application/json"):
        try:
            parsed = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise _ApiError("invalid_json") from err
        if not isinstance(parsed, dict):
            raise _ApiError("invalid_json")
        body.update(parsed)
    elif content_type.startswith("application/x-www-form-urlencoded"):
        form = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
        body.update({k: v[-1] for k, v in form.items()})
    else:
        raise _ApiError("invalid_form_data")
    return body


def _json_or_empty(raw: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return parsed if isinstance(parsed, dict) else {}
