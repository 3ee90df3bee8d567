"""A small, safe parser for Xero's ``where`` query parameter (a subset of .NET dynamic LINQ).

Nothing is ever ``eval``-ed: the expression is tokenised, parsed by recursive descent into
closures, and only whitelisted fields and methods are reachable. Supported:

    Name=="Acme"  Name!="Acme"  AND  OR  NOT  &&  ||  !  ( ... )
    ContactID==Guid("...")  Name.ToLower()=="acme"  Name.Contains("x")  Name.StartsWith("x")
    Name.EndsWith("x")  ContactNumber==null  IsCustomer==true  IsCustomer
    UpdatedDateUTC>=DateTime(2024,01,31)  (also > < <=, on dates, numbers and strings)

Strict where Xero is undocumented (integration-facts.md, "Behaviour a first real organisation
shows"): string ``==``/``!=``/``Contains``/``StartsWith``/``EndsWith`` are case-sensitive
(integrators found ``==`` case-sensitive and Xero support advised ``ToLower()``:
calcinai/xero-php#416), and a ``"`` or ``\\`` inside a string literal is a QueryParseException
(XeroAPI/Xero-Java#347): there is no escape for either.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.models.xero import parse_xero_datetime

Record = Mapping[str, Any]
Getter = Callable[[Record], Any]
Predicate = Callable[[Record], bool]


class WhereParseError(ValueError):
    """The expression is malformed or uses something the emulator (or Xero) does not support."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"[^"]*")
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op>==|!=|>=|<=|&&|\|\||[><!().,])
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and": "&&", "or": "||", "not": "!"}
_COMPARISONS = {"==", "!=", ">", "<", ">=", "<="}
_STRING_METHODS = {"contains", "startswith", "endswith"}


@dataclass(frozen=True)
class _Token:
    kind: str  # string | number | op | ident | end
    text: str


def _tokenise(expression: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    expression = expression.rstrip()
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if match is None or match.end() == position:
            raise WhereParseError(f"Unexpected character at position {position}")
        kind = match.lastgroup or ""
        text = match.group(kind)
        if kind == "string" and ("\\" in text or expression.startswith('"', match.end())):
            # No escape exists: "" or \" ends the literal early and the rest does not parse
            # (XeroAPI/Xero-Java#347); a backslash is refused as well (the stricter reading).
            raise WhereParseError(
                f"Syntax error: a quote or backslash inside a string literal near position {position}"
            )
        if kind == "ident" and text.lower() in _KEYWORDS:
            kind, text = "op", _KEYWORDS[text.lower()]
        tokens.append(_Token(kind, text))
        position = match.end()
    tokens.append(_Token("end", ""))
    return tokens


def _unquote(literal: str) -> str:
    return literal[1:-1]


def _normalise(value: Any) -> Any:
    """Bring values to a comparable form: aware datetimes. Strings keep their case: ``==`` is
    case-sensitive under the strict reading (calcinai/xero-php#416)."""
    if isinstance(value, str) and value.startswith("/Date("):
        return parse_xero_datetime(value)
    return value


def _as_uuid(value: Any) -> Any:
    try:
        return uuid.UUID(value) if isinstance(value, str) else value
    except ValueError:
        return value


def _compare(operator: str, left: Any, right: Any) -> bool:
    left, right = _normalise(left), _normalise(right)
    if isinstance(left, uuid.UUID) or isinstance(right, uuid.UUID):
        # Guid("...") compares as a GUID, whatever case either side is written in.
        left, right = _as_uuid(left), _as_uuid(right)
    if operator == "==":
        return bool(left == right)
    if operator == "!=":
        return bool(left != right)
    if left is None or right is None:
        return False
    try:
        if operator == ">":
            return bool(left > right)
        if operator == "<":
            return bool(left < right)
        if operator == ">=":
            return bool(left >= right)
        return bool(left <= right)
    except TypeError:
        # Comparing, say, a date with a string: Xero rejects it; for a record it just doesn't match.
        return False


class _Parser:
    def __init__(self, expression: str, fields: Collection[str]) -> None:
        self._tokens = _tokenise(expression)
        self._index = 0
        # Field names are case-insensitive in Xero's filter; keep the canonical spelling.
        self._fields = {name.lower(): name for name in fields}

    def parse(self) -> Predicate:
        predicate = self._or()
        if self._peek().kind != "end":
            raise WhereParseError(f"Unexpected '{self._peek().text}'")
        return predicate

    def _peek(self) -> _Token:
        return self._tokens[self._index]

    def _take(self) -> _Token:
        token = self._tokens[self._index]
        self._index += 1
        return token

    def _expect(self, text: str) -> None:
        token = self._take()
        if token.text != text:
            raise WhereParseError(f"Expected '{text}' but found '{token.text or 'end of expression'}'")

    def _or(self) -> Predicate:
        return self._joined("||", self._and, any)

    def _and(self) -> Predicate:
        return self._joined("&&", self._not, all)

    def _joined(
        self, operator: str, operand: Callable[[], Predicate], combine: Callable[[Iterable[bool]], bool]
    ) -> Predicate:
        """``operand (operator operand)*``, true as ``combine`` (any, all) of the operands says."""
        parts = [operand()]
        while self._peek().text == operator:
            self._take()
            parts.append(operand())
        if len(parts) == 1:
            return parts[0]
        return lambda record: combine(part(record) for part in parts)

    def _not(self) -> Predicate:
        if self._peek().text == "!":
            self._take()
            inner = self._not()
            return lambda record: not inner(record)
        return self._primary()

    def _primary(self) -> Predicate:
        if self._peek().text == "(":
            self._take()
            inner = self._or()
            self._expect(")")
            return inner
        left = self._value()
        operator = self._peek().text
        if operator in _COMPARISONS:
            self._take()
            right = self._value()
            return lambda record: _compare(operator, left(record), right(record))
        # A bare value is a condition only if it is boolean (IsCustomer, Name.Contains("x")).
        return lambda record: left(record) is True

    def _value(self) -> Getter:
        token = self._take()
        getter: Getter
        if token.kind == "string":
            getter = _constant(_unquote(token.text))
        elif token.kind == "number":
            getter = _constant(float(token.text) if "." in token.text else int(token.text))
        elif token.kind == "ident":
            getter = self._identifier(token.text)
        else:
            raise WhereParseError(f"Unexpected '{token.text or 'end of expression'}'")
        while self._peek().text == ".":
            self._take()
            getter = self._method(getter)
        return getter

    def _identifier(self, name: str) -> Getter:
        lowered = name.lower()
        if lowered in {"null", "true", "false"}:
            literal = {"null": None, "true": True, "false": False}[lowered]
            return lambda _record: literal
        if lowered == "guid":
            self._expect("(")
            token = self._take()
            if token.kind != "string":
                raise WhereParseError("Guid() takes a quoted value")
            self._expect(")")
            try:
                value = uuid.UUID(_unquote(token.text))
            except ValueError as error:
                raise WhereParseError("Guid() takes a GUID") from error
            return lambda _record: value
        if lowered == "datetime":
            return self._datetime()
        field = self._fields.get(lowered)
        if field is None:
            raise WhereParseError(f"No property or field '{name}' exists in type 'Contact'")
        return lambda record: record.get(field)

    def _datetime(self) -> Getter:
        self._expect("(")
        parts: list[int] = []
        while True:
            token = self._take()
            if token.kind != "number" or "." in token.text:
                raise WhereParseError("DateTime() takes whole numbers: DateTime(year, month, day)")
            parts.append(int(token.text))
            if self._peek().text == ",":
                self._take()
                continue
            self._expect(")")
            break
        if not 3 <= len(parts) <= 6:
            raise WhereParseError("DateTime() takes 3 to 6 arguments")
        try:
            padded = [*parts, 0, 0, 0][:6]
            year, month, day, hour, minute, second = padded
            moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError as error:
            raise WhereParseError(f"Invalid DateTime: {error}") from error
        return lambda _record: moment

    def _method(self, target: Getter) -> Getter:
        name_token = self._take()
        if name_token.kind != "ident":
            raise WhereParseError("Expected a method name after '.'")
        method = name_token.text.lower()
        self._expect("(")
        if method in {"tolower", "toupper", "trim"}:
            self._expect(")")
            transform: Callable[[str], str] = {"tolower": str.lower, "toupper": str.upper}.get(
                method, str.strip
            )
            return lambda record: transform(v) if isinstance(v := target(record), str) else v
        if method in _STRING_METHODS:
            token = self._take()
            if token.kind != "string":
                raise WhereParseError(f"{name_token.text}() takes a quoted value")
            self._expect(")")
            # Case-sensitive like == (the strict reading); callers wanting otherwise use ToLower().
            needle = _unquote(token.text)

            def call(record: Record) -> bool:
                haystack = target(record)
                if not isinstance(haystack, str):
                    return False
                if method == "contains":
                    return needle in haystack
                if method == "startswith":
                    return haystack.startswith(needle)
                return haystack.endswith(needle)

            return call
        raise WhereParseError(f"No applicable method '{name_token.text}' exists")


def _constant(value: Any) -> Getter:
    return lambda _record: value


def compile_where(expression: str, fields: Collection[str]) -> Predicate:
    """Compile ``expression`` into a predicate over records (dicts keyed by Xero field names)."""
    if len(expression) > 4000:
        raise WhereParseError("The where clause is too long")
    return _Parser(expression, fields).parse()
