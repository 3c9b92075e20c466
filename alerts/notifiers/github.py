"""Files bug-queue bugs as GitHub issues too, for teams whose backlog lives there.

It is the bug queue with one more step: each bug is filed in the store first (same rules, same
dedup key), then as an issue through the REST API (`POST /repos/{owner}/{repo}/issues`), and
the issue's URL is kept on the bug. An issue's body carries a hidden marker with the bug's
dedup key; before creating one, the recent issues are searched for it, so a crash between the
API call and recording the URL does not file the issue twice.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from sqlalchemy import select

from alerts.notifiers.base import Delivery, DeliveryError, Notification
from alerts.notifiers.bug_queue import BugQueueNotifier, BugSpec, SessionSource
from alerts.notifiers.http import (
    USER_AGENT,
    response_error,
    retry_after_seconds,
    send_request,
)
from alerts.notifiers.slack_blocks import format_value
from monitor.config.models import GitHubReceiver
from monitor.core.clock import Clock
from monitor.core.redact import mask
from monitor.store.tables import Bug

API_VERSION = "2022-11-28"
#: How many of the newest Vigil issues are searched for a marker before creating one.
SEARCH_PAGE = 100


def marker(dedup_key: str) -> str:
    return f"<!-- vigil-bug: {dedup_key} -->"


def issue_body(spec: BugSpec, bug_id: int) -> str:
    """Markdown a reader can act on without Vigil at hand, ending with the dedup marker."""
    alert = spec.alert
    value = format_value(alert.value, alert.unit)
    lines = [
        f"**{alert.model}** · `{alert.metric}`"
        + (f" on `{alert.feature}`" if alert.feature else ""),
        "",
        f"- Value: {value} against objective `{alert.objective}` over {alert.window}"
        f" (n = {alert.n:,})",
    ]
    if alert.ci is not None:
        low, high = (format_value(b, alert.unit) for b in alert.ci)
        lines.append(f"- Confidence interval: [{low}, {high}]")
    lines.append(f"- Severity: {alert.severity} · started {alert.started_at:%Y-%m-%d %H:%M} UTC")
    if alert.resolved_at is not None:
        lines.append(f"- Resolved {alert.resolved_at:%Y-%m-%d %H:%M} UTC")
    for name, number in sorted(alert.details.items(), key=lambda kv: -kv[1])[:5]:
        lines.append(f"- {name}: {number:.3f}")
    if alert.root_cause:
        lines += ["", "Where the change comes from:"]
        lines += [f"- {line}" for line in alert.root_cause]
    lines += ["", f"Runbook: {alert.runbook_url}"]
    if alert.evidence_url:
        lines.append(f"Evidence: {alert.evidence_url}")
    if alert.report_url:
        lines.append(f"Drift report: {alert.report_url}")
    lines += ["", f"Vigil bug #{bug_id} (`vigil bugs show {bug_id}`).", marker(spec.dedup_key)]
    return "\n".join(lines)


class GitHubIssueNotifier:
    """The bug queue, plus one GitHub issue per bug."""

    def __init__(
        self,
        queue: BugQueueNotifier,
        sessions: SessionSource,
        repo: str,
        token: str,
        base_url: str = "https://api.github.com",
        labels: list[str] | None = None,
        timeout: float = 10,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.queue = queue
        self._sessions = sessions
        self.repo = repo
        self.labels = list(labels or [])
        self._token = token.strip()
        self._base = base_url.rstrip("/")
        self._client = httpx.Client(
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            headers={
                "Authorization": f"Bearer {self._token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": USER_AGENT,
            },
        )

    def __repr__(self) -> str:
        return f"GitHubIssueNotifier(repo={self.repo!r})"

    def send(self, notification: Notification) -> Delivery:
        urls: list[str] = []
        for bug_id, spec in self.queue.file(notification):
            with self._sessions()() as session:
                known = session.scalars(select(Bug.external_url).where(Bug.id == bug_id)).first()
            url = known or self._find(spec.dedup_key) or self._create(spec, bug_id)
            if not known:
                with self._sessions().begin() as session:
                    bug = session.get(Bug, bug_id)
                    if bug is not None:
                        bug.external_url = url
            urls.append(url)
        return Delivery(ref=urls[-1] if urls else None)

    def _find(self, dedup_key: str) -> str | None:
        params: dict[str, Any] = {
            "state": "all",
            "per_page": SEARCH_PAGE,
            "sort": "created",
            "direction": "desc",
        }
        if self.labels:
            params["labels"] = ",".join(self.labels)
        answer = self._request("GET", f"/repos/{self.repo}/issues", params=params)
        wanted = marker(dedup_key)
        for issue in answer if isinstance(answer, list) else []:
            if wanted in str(issue.get("body") or ""):
                return str(issue["html_url"])
        return None

    def _create(self, spec: BugSpec, bug_id: int) -> str:
        body = {"title": spec.title, "body": issue_body(spec, bug_id), "labels": self.labels}
        answer = self._request("POST", f"/repos/{self.repo}/issues", json=body)
        if not isinstance(answer, dict) or "html_url" not in answer:
            raise DeliveryError("github: the created issue came back without a URL", retryable=True)
        return str(answer["html_url"])

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = send_request(
            self._client, "github", method, self._base + path, [self._token], **kwargs
        )
        if not response.is_success:
            raise self._error(response)
        try:
            return response.json()
        except ValueError:
            raise DeliveryError("github answered without JSON", retryable=True) from None

    def _error(self, response: httpx.Response) -> DeliveryError:
        """GitHub's rate limits are 403 or 429 with headers saying until when; other 4xx are
        a token, repository or request problem that waiting will not fix."""
        try:
            detail = str(response.json().get("message", ""))
        except ValueError:
            detail = response.text.strip()
        headers = response.headers
        limited = response.status_code in (403, 429) and (
            headers.get("retry-after") or headers.get("x-ratelimit-remaining") == "0"
        )
        if not limited:
            return response_error("github", response, detail, [self._token])
        seconds = retry_after_seconds(headers.get("retry-after"))
        reset = headers.get("x-ratelimit-reset")
        if seconds is None and reset and reset.isdigit():
            seconds = max(float(reset) - time.time(), 0.0)
        return DeliveryError(
            mask(f"github rate limit (HTTP {response.status_code}): {detail}"[:300], [self._token]),
            retryable=True,
            retry_after=seconds,
        )


def from_config(cfg: GitHubReceiver, sessions: SessionSource, clock: Clock) -> GitHubIssueNotifier:
    queue = BugQueueNotifier(sessions, clock, follow_up_pages=cfg.follow_up_pages)
    return GitHubIssueNotifier(
        queue,
        sessions,
        cfg.repo,
        cfg.token.get_secret_value(),
        base_url=cfg.base_url,
        labels=cfg.labels,
    )
