"""What every layout model shares: strictness and the kebab-case name type."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def _kebab(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise ValueError(f"'{name}' is not a kebab-case name (lowercase letters, digits and single dashes)")
    return name


Name = Annotated[str, AfterValidator(_kebab)]


class Strict(BaseModel):
    """Base for every layout model: unknown keys are errors, models are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # finite numbers only


def article(word: str) -> str:
    """'a' or 'an' before a name as it is spoken: an ads1115, an i2c bus, an sdm120, an spi bus (letters), but
    a max31865, a serial bus (a word)."""
    spelled_out = len(word) > 1 and word[0] in "fhlmnrsx" and word[1] not in "aeiou"
    return "an" if word[:1] in "aeio" or spelled_out else "a"
