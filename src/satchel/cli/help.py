"""Help pages in the usual command-line style: ``NAME``, ``URL``, never Python types.

Typer labels each value with its Python annotation (``<bool>``, ``<list[str]>``) and writes
required arguments as ``{name}`` in the usage line. These classes show a flag with no
placeholder, an option with its ``metavar`` (``--store URL``) and an argument by its name
in capitals, as ``man`` pages and ``--help`` of other tools do.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption


class _Argument(TyperArgument):
    def display_type_rich(self, ctx: Any) -> str | None:
        return None  # the name column already says what the value is

    def _usage_display_name(self) -> str:
        name = self.metavar or (self.name or "").upper()
        return name if self.required else f"[{name}]"


def _tidy(params: list[Any]) -> None:
    for param in params:
        if type(param) is TyperArgument:
            if param.metavar is None:
                param.metavar = (param.name or "").upper()
            # Typer builds its own parameter objects; this only changes how help shows one.
            param.__class__ = _Argument
        elif isinstance(param, TyperOption) and param.metavar is None:
            param.metavar = "" if param.is_flag else _plain_type(param)


def _plain_type(option: TyperOption) -> str:
    # Every option here sets its metavar; this only covers one that forgot to.
    bare = getattr(option, "bare_type", None)
    name = str(bare()) if callable(bare) else ""
    return {"int": "N", "str": "TEXT", "float": "NUMBER"}.get(name, "VALUE")


def _tidy_help_option(option: Any) -> Any:
    if isinstance(option, TyperOption):
        option.metavar = ""
    return option


class Command(TyperCommand):
    """A command whose help shows ``NAME`` and ``URL`` rather than Python types."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _tidy(self.params)

    def get_help_option(self, ctx: Any) -> Any:
        return _tidy_help_option(super().get_help_option(ctx))


class Group(TyperGroup):
    """A command group with the same help style as :class:`Command`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _tidy(self.params)

    def get_help_option(self, ctx: Any) -> Any:
        return _tidy_help_option(super().get_help_option(ctx))
