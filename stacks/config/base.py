"""The base of every configuration section: a frozen pydantic model that refuses unknown keys.

Each field's default, range and pattern are declared once, on the field (:func:`setting`). Checks that
span fields live in a section's ``problems()``: it runs only when every field of the section parsed, so a
bad value never produces follow-on errors from checks that would have read a stand-in value.
"""
from __future__ import annotations

from typing import Any

import types
from typing import Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

#: The pydantic error type that carries a section's cross-field problems (see ``loading.describe``).
PROBLEMS_ERROR = "config_problems"


def setting(default: Any = ..., *, ge: float | None = None, le: float | None = None, pattern: str | None = None,
            multiple_of: int | None = None, help: str = "") -> Any:
    """A field with its default, its range or pattern and a human description of what is allowed."""
    # pydantic searches for the pattern; a setting must match it whole.
    return Field(default, ge=ge, le=le, pattern=f"^(?:{pattern})$" if pattern else None, multiple_of=multiple_of,
                 json_schema_extra={"allowed": help} if help else None)


def allowed_text(info: Any) -> str | None:
    """The human description of what a field accepts (``setting(help=...)``), if any."""
    extra = info.json_schema_extra if info is not None else None
    return extra.get("allowed") if isinstance(extra, dict) else None


class ConfigModel(BaseModel):
    """A configuration section: immutable, every key known, cross-field checks in :meth:`problems`."""

    # The docstring under a field is its description (the configuration reference shows it).
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, use_attribute_docstrings=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_as_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic would read true as 1: `max_capacity=true` is a mistake to report, not a capacity of one.
        if isinstance(value, bool) and info.field_name in cls.model_fields:
            annotation = cls.model_fields[info.field_name].annotation
            if get_origin(annotation) in (Union, types.UnionType):
                annotation = next((arg for arg in get_args(annotation) if arg is not type(None)), annotation)
            if annotation is int:
                raise PydanticCustomError("int_type", "Input should be a valid integer")
            if annotation is float:
                raise PydanticCustomError("float_type", "Input should be a valid number")
        return value

    def problems(self) -> list[str]:
        """Checks spanning this section's fields, as ``relative.key: message`` lines; none by default."""
        return []

    def problems_in_context(self, context: dict[str, Any]) -> list[str]:
        """Checks that need facts from outside the section, passed by the loader as validation context."""
        return []

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> "ConfigModel":
        found = self.problems() + self.problems_in_context(info.context or {})
        if found:
            raise PydanticCustomError(PROBLEMS_ERROR, "{problems}", {"problems": tuple(found)})
        return self


__all__ = ["ConfigModel", "PROBLEMS_ERROR", "allowed_text", "setting"]
