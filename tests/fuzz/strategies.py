"""Hypothesis strategies for what reaches ``POST /webhooks/ignition``: bodies good and bad,
signatures good and bad, header names in any case."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

# Anything JSON can hold, without floats (Ignition amounts are decimals; floats are covered by
# the NaN/Infinity class) and kept small.
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text(max_size=20))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=5,
)

# Ids and names: any printable Unicode (no surrogates: those are a class of their own).
_unicode = st.characters(exclude_categories=("Cs",))
_alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
any_text = st.text(_unicode, min_size=1, max_size=24)
event_ids = st.one_of(
    st.text(_alnum, min_size=8, max_size=24).map(lambda t: f"evt_{t}"),
    st.text(_unicode, min_size=1, max_size=128),
)
slugs = st.one_of(
    st.tuples(st.sampled_from(["cli", "inv", "pypay"]), st.text(_alnum, min_size=4, max_size=12)).map(
        "_".join
    ),
    st.text(st.characters(exclude_categories=("Cs", "Zs", "Cc")), min_size=1, max_size=100),
)
timestamps = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.sampled_from([UTC, None])
).map(lambda moment: moment.isoformat())


@st.composite
def records(draw: st.DrawFn, prefix: str, slug: str) -> dict[str, Any]:
    """``data`` of an envelope: a bare hint, a complete record, or something in between."""
    shape = draw(st.sampled_from(["hint", "complete", "partial"]))
    data: dict[str, Any] = {"slug": slug}
    if shape == "hint":
        return data
    if prefix == "client":
        data.update(
            {"name": draw(any_text), "email": f"{draw(st.text(_alnum, min_size=1, max_size=8))}@x.test"}
        )
    else:
        data.update(
            {
                "client": {"slug": draw(slugs)},
                "amount": {"total": str(draw(st.decimals(0, 10**6, places=2))), "currency": "AUD"},
                "date": "2026-11-02",
            }
        )
    if shape == "partial":
        data.pop(draw(st.sampled_from(sorted(set(data) - {"slug"}))))
    extra = draw(
        st.dictionaries(st.text(max_size=8).filter(lambda key: key not in data), json_values, max_size=3)
    )
    return {**data, **extra}


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """A webhook the ingest function must accept."""
    prefix = draw(st.sampled_from(["client", "invoice", "payment"]))
    document: dict[str, Any] = {
        "id": draw(event_ids),
        "type": f"{prefix}.{draw(st.text(_unicode, max_size=24))}",
        "occurred_at": draw(timestamps),
        "data": draw(records(prefix, draw(slugs))),
    }
    if draw(st.booleans()):
        document["source"] = {"application_slug": draw(any_text)}
    if draw(st.booleans()):
        document[draw(st.sampled_from(["extra", "version", "attempt"]))] = draw(json_values)
    return document


def dumps(document: Any, style: str = "compact") -> bytes:
    if style == "compact":
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if style == "ascii":
        return json.dumps(document, ensure_ascii=True).encode("ascii")
    return json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8")


@st.composite
def valid_bodies(draw: st.DrawFn) -> tuple[dict[str, Any], bytes]:
    document = draw(envelopes())
    return document, dumps(document, draw(st.sampled_from(["compact", "ascii", "pretty"])))


def padded_to(document: dict[str, Any], size: int) -> bytes:
    """``document`` with an extra data field making the body exactly ``size`` bytes."""
    base = dumps({**document, "data": {**document["data"], "notes": ""}})
    padded = {**document, "data": {**document["data"], "notes": "x" * max(0, size - len(base))}}
    return dumps(padded)


# -- bodies an authentic sender could still get wrong (each is a class) -----------------------


@st.composite
def malformed_bodies(draw: st.DrawFn, max_body_bytes: int) -> tuple[str, bytes]:
    """(class, body) for bodies that are not a usable webhook (or are, by accident: duplicate keys
    and wrong types can still validate; the property covers both outcomes)."""
    kind = draw(
        st.sampled_from(
            [
                "random-bytes",
                "invalid-utf8",
                "oversized",
                "json-not-object",
                "missing-fields",
                "wrong-types",
                "unknown-event-type",
                "deep-nesting",
                "duplicate-keys",
                "nan-infinity",
                "surrogate-escapes",
                "empty",
                "bad-slug",
            ]
        )
    )
    if kind == "random-bytes":
        return kind, draw(st.binary(min_size=1, max_size=512))
    if kind == "empty":
        return kind, b""
    document = draw(envelopes())
    return kind, _MALFORMED[kind](draw, document, max_body_bytes)


def _invalid_utf8(draw: st.DrawFn, document: dict[str, Any], max_body_bytes: int) -> bytes:
    good = dumps(document)
    at = draw(st.integers(0, len(good)))
    bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf0\x28\x8c\x28", b"\x80"]))
    return good[:at] + bad + good[at:]


def _oversized(draw: st.DrawFn, document: dict[str, Any], max_body_bytes: int) -> bytes:
    return padded_to(document, max_body_bytes + draw(st.integers(1, 64)))


def _json_not_object(draw: st.DrawFn, document: dict[str, Any], max_body_bytes: int) -> bytes:
    return dumps(draw(json_values.filter(lambda v: not isinstance(v, dict))))


def _missing_fields(draw: st.DrawFn, document: dict[str, Any], max_body_bytes: int) -> bytes:
    drop = draw(st.sets(st.sampled_from(["id", "type", "occurred_at", "data"]), min_size=1))
    return dumps({k: v for k, v in document.items() if k not in drop})


def _wrong_types(draw: st.DrawFn, document: dict[str, Any], max_body_bytes: int) -> bytes:
    field = draw(st.sampled_from(["id", "type", "occurred_at", "data", "source"]))
    wrong = draw(
        st.one_of(st.integers(), st.lists(json_scalars, max_size=2), st.booleans(), st.none(), st.text())
    )
    return dumps({**document, field: wrong})


def _unknown_event_type(draw: st.DrawFn, document: dict[str, Any], max_body_bytes: int) -> bytes:
    event_type = draw(any_text.filter(lambda t: t.split(".", 1)[0] not in {"client", "invoice", "payment"}))
    return dumps({**document, "type": event_type})


def _deep_nesting(draw: st.DrawFn, document: dict[str, Any], max_body_bytes: int) -> bytes:
    depth = draw(st.integers(500, min(100_000, max_body_bytes // 2 - 200)))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    nested = opener * depth + "1" + closer * depth
    where = draw(st.sampled_from(["top", "data"]))
    if where == "top":
        return nested.encode()
    head = dumps({**document, "data": {**document["data"], "deep": 0}})
    return head.replace(b'"deep":0', b'"deep":' + nested.encode())


def _duplicate_keys(draw: st.DrawFn, document: dict[str, Any], max_body_bytes: int) -> bytes:
    text = dumps(document).decode()
    key = draw(st.sampled_from(["id", "type", "occurred_at", "data"]))
    other = json.dumps(draw(json_values))
    # A second (last-wins) or first copy of the key with another value.
    if draw(st.booleans()):
        return (text[:-1] + f',"{key}":{other}}}').encode()
    return ("{" + f'"{key}":{other},' + text[1:]).encode()


def _nan_infinity(draw: st.DrawFn, document: dict[str, Any], max_body_bytes: int) -> bytes:
    constant = draw(st.sampled_from(["NaN", "Infinity", "-Infinity"]))
    head = dumps({**document, "data": {**document["data"], "amount": 0}})
    return head.replace(b'"amount":0', b'"amount":' + constant.encode())


def _surrogate_escapes(draw: st.DrawFn, document: dict[str, Any], max_body_bytes: int) -> bytes:
    field = draw(st.sampled_from(["id", "type", "slug", "name", "extra"]))
    lone = draw(st.sampled_from(["\\ud800", "\\udfff", "\\ud83d", "x\\udc00y"]))
    marker = "@@LONE@@"
    if field == "slug":
        document = {**document, "data": {**document["data"], "slug": marker}}
    elif field in {"name", "extra"}:
        document = {**document, "data": {**document["data"], field: marker}}
    elif field == "type":
        document = {**document, "type": f"client.{marker}"}
    else:
        document = {**document, field: marker}
    return dumps(document, "ascii").replace(marker.encode(), lone.encode())


def _bad_slug(draw: st.DrawFn, document: dict[str, Any], max_body_bytes: int) -> bytes:
    slug = draw(st.one_of(st.just(""), st.just("   "), st.text(min_size=101, max_size=120), st.integers()))
    return dumps({**document, "data": {**document["data"], "slug": slug}})


# One builder per class of body that needs a well-formed webhook to start from.
_MALFORMED: dict[str, Callable[[st.DrawFn, dict[str, Any], int], bytes]] = {
    "invalid-utf8": _invalid_utf8,
    "oversized": _oversized,
    "json-not-object": _json_not_object,
    "missing-fields": _missing_fields,
    "wrong-types": _wrong_types,
    "unknown-event-type": _unknown_event_type,
    "deep-nesting": _deep_nesting,
    "duplicate-keys": _duplicate_keys,
    "nan-infinity": _nan_infinity,
    "surrogate-escapes": _surrogate_escapes,
    "bad-slug": _bad_slug,
}


# -- headers -----------------------------------------------------------------------------------


@st.composite
def cased(draw: st.DrawFn, name: str) -> str:
    """``name`` as a sender might spell it: lower, upper, title, or any mix."""
    style = draw(st.sampled_from(["as-is", "lower", "upper", "title", "mixed"]))
    if style == "lower":
        return name.lower()
    if style == "upper":
        return name.upper()
    if style == "title":
        return name.title()
    if style == "mixed":
        flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
        return "".join(ch.upper() if flip else ch.lower() for ch, flip in zip(name, flips, strict=True))
    return name


def digest(body: bytes, secret: str, stamp: str | None = None) -> bytes:
    message = body if stamp is None else stamp.encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def encode(raw: bytes, encoding: str) -> str:
    return raw.hex() if encoding == "hex" else base64.b64encode(raw).decode("ascii")


def stale_or_future(now: datetime, max_age: int) -> st.SearchStrategy[datetime]:
    return st.one_of(
        st.integers(max_age + 2, 10 * 365 * 86_400).map(lambda s: now - timedelta(seconds=s)),
        st.integers(max_age + 2, 10 * 365 * 86_400).map(lambda s: now + timedelta(seconds=s)),
    )


malformed_timestamps = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            " ",
            "abc",
            "1e9",
            "9" * 40,
            "-" + "9" * 30,
            "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660",  # Arabic-Indic digits
            "\uff11\uff17\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff10",  # full-width digits
            "2026-13-45T99:99:99Z",
            "0001-01-01T00:00:00",
            "9999-12-31T23:59:59-14:00",
            "1_700_000_000",
        ]
    ),
)
