"""The bid push audit table (`bid_push_audit`, DuckDB) and the secret redaction every audited text goes through.

One row per attempt at an intended change (one field of one platform object). A change's row is written with
status `intended` and committed BEFORE the platform is called, and updated in a second committed transaction AFTER
the call ended. The status is the truth about that attempt (`STATUS_MEANINGS`):

  applied                 the platform answered that it applied the value
  validated_by_platform   validate-only: the platform checked the values themselves and would accept them
                          (Google Ads `validate_only`, Meta `execution_options=["validate_only"]`, the demo market)
  checked_exists          validate-only on a platform without a validate-only mode (TikTok, Microsoft): a read
                          showed that the object exists, belongs to the account and holds that kind of setting; the
                          values themselves were NOT checked by the platform
  refused                 the platform answered that it did not apply it (an API error naming the change, a rate
                          limit that outlasted the retries, an authentication error)
  unknown                 the request left but no usable answer came back (timeout, connection lost after sending,
                          5xx, an unreadable body): the platform may or may not have applied it. The next push of
                          the partition reads the platform's current value before re-sending
  not_sent                GAELP did not send it: a check before sending failed (the object belongs to another
                          account or does not exist) or the platform had stopped answering earlier calls
  skipped_unchanged       no call was needed: the value was already in force (the plan, an earlier applied row of
                          the partition, or a read-back after an `unknown` says so); the response says which

A run that dies between the two transactions leaves `intended`; the next push of the account records such rows as
`unknown` (nobody is waiting for their answer any more) and reconciles them like any other unknown outcome.
Re-sending is always safe: pushes set absolute values, they never add.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from rl.bidding.plan import FIELDS

TABLE = "bid_push_audit"
MODES = ("validate_only", "live", "demo")
STATUSES = (
    "intended",
    "applied",
    "validated_by_platform",
    "checked_exists",
    "refused",
    "unknown",
    "not_sent",
    "skipped_unchanged",
)
VALIDATION_STATUSES = ("validated_by_platform", "checked_exists")
# Statuses after which nothing is wrong with the change (the value is, or would be, in force).
OK_STATUSES = ("applied", *VALIDATION_STATUSES, "skipped_unchanged")
# Statuses a run should fail on: the change is not (known to be) in force.
PROBLEM_STATUSES = ("refused", "unknown", "not_sent", "intended")
# What the statuses of the first audit tables meant, per account prefix (see `_migrate`).
_LEGACY_VALIDATED = {"tiktok": "checked_exists", "microsoft_ads": "checked_exists"}
REDACTED = "***"

_SECRET_KEYS = {
    "developertoken",
    "accesstoken",
    "clientsecret",
    "refreshtoken",
    "appsecret",
    "appsecretproof",
    "password",
    "authenticationtoken",
    "authorization",
    "apikey",
    "idtoken",
    "token",
    "secret",
}
_KEY_ALTERNATION = (
    r"developer[_-]?token|access[_-]?token|client[_-]?secret|refresh[_-]?token|app[_-]?secret(?:[_-]?proof)?"
    r"|password|authentication[_-]?token|api[_-]?key|id[_-]?token"
)
_TEXT_PATTERNS = [
    # key=value, key: value, "key": "value", 'key': 'value' (URLs, headers, JSON, Python reprs)
    (re.compile(rf"(?i)((?:{_KEY_ALTERNATION})[\"']?\s*[:=]\s*[\"']?)([^\"'&\s,;}}<)]+)"), r"\1" + REDACTED),
    # <ns:DeveloperToken>value</ns:DeveloperToken> (SOAP headers)
    (
        re.compile(
            r"(?i)(<(?:[\w-]+:)?(?:DeveloperToken|AuthenticationToken|Password|ClientSecret|RefreshToken)\b[^>]*>)"
            r"[^<]*(</)"
        ),
        r"\1" + REDACTED + r"\2",
    ),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + REDACTED),
]


def _is_secret_key(key: Any) -> bool:
    return re.sub(r"[\s_-]", "", str(key)).lower() in _SECRET_KEYS


def redact(value: Any, secrets: Iterable[str] = ()) -> Any:
    """`value` with secrets removed: dict entries under a secret-looking key (developer/access/refresh token, client
    or app secret, appsecret_proof, password, authorization, api key) become "***", and in strings such key=value
    pairs, SOAP token elements, bearer tokens and any of the given `secrets` values are replaced. Lists, tuples and
    nested dicts are walked; other values are returned as they are."""
    known = sorted({s for s in secrets if s and len(str(s)) >= 4}, key=len, reverse=True)
    return _redact(value, known)


def _redact(value: Any, known: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if _is_secret_key(k) else _redact(v, known) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact(v, known) for v in value)
    if isinstance(value, bytes):
        return _redact(value.decode("utf-8", "replace"), known)
    if isinstance(value, str):
        for secret in known:
            value = value.replace(str(secret), REDACTED)
        for pattern, replacement in _TEXT_PATTERNS:
            value = pattern.sub(replacement, value)
        return value
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message (arguments merged in) with `redact`, for SDK loggers
    that print whole requests (suds logs SOAP envelopes with their token headers at DEBUG)."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self.secrets: set[str] = set(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_redacting_filter(logger_prefixes: Sequence[str], secrets: Iterable[str]) -> None:
    """Attach one shared `RedactingFilter` (knowing `secrets`) to every existing logger under the given prefixes."""
    names = [
        name
        for name in list(logging.Logger.manager.loggerDict)
        if any(name == p or name.startswith(p + ".") for p in logger_prefixes)
    ]
    for name in {*names, *logger_prefixes}:
        logger = logging.getLogger(name)
        existing = next((f for f in logger.filters if isinstance(f, RedactingFilter)), None)
        if existing is None:
            logger.addFilter(RedactingFilter(secrets))
        else:
            existing.secrets.update(secrets)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


DDL = f"""
CREATE SEQUENCE IF NOT EXISTS {TABLE}_seq;
CREATE TABLE IF NOT EXISTS {TABLE} (
    audit_id BIGINT NOT NULL DEFAULT nextval('{TABLE}_seq'),
    push_id VARCHAR NOT NULL,
    data_partition VARCHAR NOT NULL,
    policy_version VARCHAR NOT NULL,
    platform VARCHAR NOT NULL,
    account VARCHAR NOT NULL,
    campaign_id BIGINT NOT NULL,
    field VARCHAR NOT NULL CHECK (field IN {FIELDS}),
    target VARCHAR NOT NULL,
    old_value DOUBLE,
    new_value DOUBLE NOT NULL,
    mode VARCHAR NOT NULL CHECK (mode IN {MODES}),
    status VARCHAR NOT NULL CHECK (status IN {STATUSES}),
    request_json VARCHAR,
    response VARCHAR,
    request_id VARCHAR,
    operation_index INTEGER,
    intended_at_utc TIMESTAMP NOT NULL,
    finished_at_utc TIMESTAMP
);
"""
COLUMNS = (
    "audit_id",
    "push_id",
    "data_partition",
    "policy_version",
    "platform",
    "account",
    "campaign_id",
    "field",
    "target",
    "old_value",
    "new_value",
    "mode",
    "status",
    "request_json",
    "response",
    "request_id",
    "operation_index",
    "intended_at_utc",
    "finished_at_utc",
)


class PushAudit:
    """The audit table on a DuckDB connection (created if missing, migrated if it is from before the statuses were
    split). Every write is its own committed transaction, so the connection must not be inside a transaction of the
    caller's."""

    def __init__(self, connection: Any, secrets: Iterable[str] = ()):
        self.connection = connection
        self.secrets = set(secrets)
        with self._transaction():
            self._migrate()
            self.connection.execute(DDL)

    def _migrate(self) -> None:
        """Rewrite a table whose CHECK constraints refuse a status or field of today (the first tables had
        `validated` and `failed`; a field added to `rl.bidding.plan.FIELDS` is migrated the same way). `failed` was
        written for refusals, so it becomes `refused`; `validated` meant a platform validation on Google Ads, Meta
        and the demo market and an existence check on TikTok and Microsoft Advertising."""
        found = self.connection.execute(
            "SELECT sql FROM duckdb_tables() WHERE table_name = ? AND schema_name = current_schema()", [TABLE]
        ).fetchall()
        if not found or all(f"'{v}'" in found[0][0] for v in (*STATUSES, *FIELDS)):
            return  # no table yet, or one that accepts every status and field of today
        legacy = "".join(
            f"WHEN status = 'validated' AND account LIKE '{prefix}:%' THEN '{status}' "
            for prefix, status in _LEGACY_VALIDATED.items()
        )
        status = (
            f"CASE {legacy}WHEN status = 'validated' THEN 'validated_by_platform' "
            "WHEN status = 'failed' THEN 'refused' ELSE status END"
        )
        columns = ", ".join(COLUMNS)
        selected = ", ".join(status if c == "status" else c for c in COLUMNS)
        self.connection.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_v1")
        self.connection.execute(DDL)
        self.connection.execute(f"INSERT INTO {TABLE} ({columns}) SELECT {selected} FROM {TABLE}_v1")
        self.connection.execute(f"DROP TABLE {TABLE}_v1")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self.connection.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    def _clean(self, text: Any) -> str | None:
        if text is None:
            return None
        if not isinstance(text, str):
            text = json.dumps(redact(text, self.secrets), sort_keys=True, default=str)
        return redact(text, self.secrets)

    def insert(self, entries: Sequence[dict[str, Any]]) -> list[int]:
        """Insert rows (dicts with the columns except audit_id; `request_json` may be a dict) in one committed
        transaction; returns their audit ids in order. Texts are redacted on the way in."""
        names = [c for c in COLUMNS if c != "audit_id"]
        sql = f"INSERT INTO {TABLE} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) RETURNING audit_id"
        ids = []
        with self._transaction():
            for entry in entries:
                if entry["mode"] not in MODES or entry["status"] not in STATUSES:
                    raise ValueError(f"audit row with mode {entry['mode']!r} / status {entry['status']!r}")
                values = [entry.get(c) for c in names]
                for i, name in enumerate(names):
                    if name in ("request_json", "response"):
                        values[i] = self._clean(values[i])
                ids.append(self.connection.execute(sql, values).fetchone()[0])
        return ids

    def finish(self, updates: Sequence[tuple[int, str, str | None, str | None, int | None]]) -> None:
        """Record how calls ended — (audit_id, status, response, request_id, operation_index) — in one committed
        transaction. Only rows still `intended` are updated."""
        sql = (
            f"UPDATE {TABLE} SET status = ?, response = ?, request_id = ?, operation_index = ?, finished_at_utc = ? "
            "WHERE audit_id = ? AND status = 'intended'"
        )
        now = utc_now()
        with self._transaction():
            for audit_id, status, response, request_id, operation_index in updates:
                if status not in STATUSES or status == "intended":
                    raise ValueError(f"audit row {audit_id}: cannot finish with status {status!r}")
                self.connection.execute(
                    sql, [status, self._clean(response), request_id, operation_index, now, audit_id]
                )

    def expire_intended(self, account: str) -> list[int]:
        """Record the account's rows still `intended` as `unknown`: the push that wrote them ended without
        recording an answer (the process stopped), so their outcome is unknown. Called before a push of the
        account, when no other push of it is running (pushes share the `duckdb_writer` pool, limit 1)."""
        with self._transaction():
            rows = self.connection.execute(
                f"UPDATE {TABLE} SET status = 'unknown', finished_at_utc = ?, response = ? "
                "WHERE account = ? AND status = 'intended' RETURNING audit_id",
                [
                    utc_now(),
                    "sent or about to be sent, but the push stopped before it recorded an answer (the process "
                    "ended): the platform may or may not have applied it",
                    account,
                ],
            ).fetchall()
        return sorted(int(r[0]) for r in rows)

    def latest(self, data_partition: str, platform: str, mode: str) -> dict[tuple[int, str, str], dict[str, Any]]:
        """(campaign_id, field, target) -> the latest row (status, new_value, audit_id) of that change for this
        partition, platform and mode: what the next push of the partition starts from."""
        rows = self.connection.execute(
            f"SELECT campaign_id, field, target, status, new_value, audit_id FROM {TABLE} "
            "WHERE data_partition = ? AND platform = ? AND mode = ? ORDER BY audit_id",
            [data_partition, platform, mode],
        ).fetchall()
        return {(int(c), f, t): {"status": s, "new_value": float(v), "audit_id": int(a)} for c, f, t, s, v, a in rows}

    def applied(self, data_partition: str, platform: str, mode: str) -> dict[tuple[int, str, str], tuple[float, int]]:
        """(campaign_id, field, target) -> (new_value, audit_id) of the last change applied for this partition on
        this platform in this mode."""
        rows = self.connection.execute(
            f"SELECT campaign_id, field, target, new_value, audit_id FROM {TABLE} "
            "WHERE data_partition = ? AND platform = ? AND mode = ? AND status = 'applied' ORDER BY audit_id",
            [data_partition, platform, mode],
        ).fetchall()
        return {(int(c), f, t): (float(v), int(a)) for c, f, t, v, a in rows}

    def rows(self, data_partition: str | None = None) -> list[dict[str, Any]]:
        """The audit rows (all, or one partition's), oldest first, as dicts."""
        where, params = ("WHERE data_partition = ?", [data_partition]) if data_partition else ("", [])
        cursor = self.connection.execute(f"SELECT {', '.join(COLUMNS)} FROM {TABLE} {where} ORDER BY audit_id", params)
        return [dict(zip(COLUMNS, r, strict=True)) for r in cursor.fetchall()]
