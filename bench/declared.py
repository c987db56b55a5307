"""Declared shapes: what the registry, task files, result records and training runs hold, as pydantic dataclasses
(as mteb declares TaskMetadata and ModelMeta), and the one-line error a file that breaks one gets.

Each field says what it expects in its metadata (`expect(...)`), in the words the error prints after
"field 'NAME'"; a validator that needs the value or other fields raises `wrong(...)` with the whole text instead.
A pydantic ValidationError never reaches the user: `build` turns its first error into a BenchError.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

from bench.errors import BenchError, unknown_field

# strict: a string is no number and a number no string, a bool is no number (as JSON and YAML read them).
# A file's unknown fields are refused by `complaint` with the allowed list, as refuse_unknown words it.
STRICT = ConfigDict(strict=True, extra="forbid")
WRONG = "bench"  # the error type of a validator's own message
CHOICE = "choice"  # a value not among a field's choices (one_of)


def wrong(text: str) -> PydanticCustomError:
    """A validator's complaint, printed as is after the file's label ("field 'x' is ..., expected ...")."""
    return PydanticCustomError(WRONG, "{text}", {"text": text})


def expect(text: str, default: Any = dataclasses.MISSING, **kw) -> Any:
    """A dataclass field whose bad value is reported as "field 'NAME'" + text ({value!r}: the value given)."""
    if default is not dataclasses.MISSING and isinstance(default, (list, dict)):
        kw["default_factory"] = type(default)
    elif default is not dataclasses.MISSING:
        kw["default"] = default
    return dataclasses.field(metadata={"expect": text}, **kw)


@dataclasses.dataclass(frozen=True)
class Expect:
    """What a type expects, in the words an error prints after "field 'NAME'": Annotated[type, Expect(text)]."""

    text: str


def one_of(choices, text: str, *, after: bool = False):
    """A field that takes one of `choices` (Annotated[type, one_of(...)]); `text`, with {value!r} or {value}, is what
    the error prints after "field 'NAME'". `after`: checked once the value has the field's type (a required name
    that is missing says so first)."""
    def check(v):
        if v not in choices:
            raise PydanticCustomError(CHOICE, "{text}", {"text": text.format(value=v)})
        return v

    return (AfterValidator if after else BeforeValidator)(check)


def _not_blank(v: str) -> str:
    if not v.strip():
        raise PydanticCustomError("blank", "blank")  # the field's own expectation says what it wants
    return v


REQUIRED_TEXT = " is missing or not a non-empty string"  # what a required name, path or kind expects
# A JSON number as the file wrote it: an int stays an int, so a record rewrites byte for byte.
Number = int | float
NonBlank = Annotated[str, AfterValidator(_not_blank)]


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _field_text(cls, err: dict, prefix: str) -> str:
    name = str(err["loc"][0]) if err["loc"] else ""
    if err["type"] == WRONG and err["msg"]:
        return err["msg"]
    if err["type"] == CHOICE:
        return f"field '{prefix}{name}'" + err["msg"]
    value = None if err["type"] in ("missing", "missing_argument") else err.get("input")
    return f"field '{prefix}{name}'" + _expected(cls, name).format(value=value)


def _expected(cls, name: str) -> str:
    meta = {f.name: f.metadata for f in dataclasses.fields(cls)}.get(name, {})
    if "expect" in meta:
        return meta["expect"]
    info = cls.__pydantic_fields__.get(name)
    return next((m.text for m in (info.metadata if info else []) if isinstance(m, Expect)), " is not valid")


def build(cls, data: dict, label: str, *, sep: str = ": ", **how):
    """`cls(**data)`, or a BenchError "{label}{sep}field 'NAME' ...": one line, the first complaint (see complaint)."""
    made, text = complaint(cls, data, **how)
    if text:
        raise BenchError(f"{label}{sep}{text}")
    return made


def complaint(cls, data: dict, *, allowed=None, first=(), required=(), prefix: str = "", **extra):
    """(cls(**data, **extra), None), or (None, what is wrong with `data` in one line, without the file's label).

    Which complaint comes first follows the order the checks were written in: errors of the fields in `first`, then
    a `required` field missing or of the wrong type, then a field not in `allowed` (unknown fields are refused, as
    refuse_unknown words it), then the rest in field order."""
    allowed = allowed if allowed is not None else {f.name for f in dataclasses.fields(cls)}
    try:
        # A field the caller fills in (a folder, a profile's name) is never the file's to give.
        made = cls(**{k: v for k, v in data.items() if k not in extra}, **extra)
    except ValidationError as e:
        errors = sorted((err for err in e.errors() if err["type"] != "unexpected_keyword_argument"),
                        key=lambda err: _phase(err, first, required))
        if errors and _phase(errors[0], first, required)[0] < 2:
            return None, _field_text(cls, errors[0], prefix)
        unknown = unknown_field(data, allowed, prefix)
        return None, unknown or (_field_text(cls, errors[0], prefix) if errors else str(e).splitlines()[0])
    unknown = unknown_field(data, allowed, prefix)
    return (None, unknown) if unknown else (made, None)


def _phase(err: dict, first, required) -> tuple[int, int]:
    name = err["loc"][0] if err["loc"] else ""
    if name in first:
        return 0, first.index(name)
    if name in required and err["type"] not in (WRONG, CHOICE):
        return 1, required.index(name)
    return 3, 0
