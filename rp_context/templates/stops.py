"""Stop strings and end-of-turn token ids, derived from the template and the model."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .model import InstructTemplate

__all__ = ["instruct_stop_strings", "stop_token_ids", "name_stops"]


def instruct_stop_strings(t: InstructTemplate, *, user: str = "User", char: str = "Assistant") -> list[str]:
    """SillyTavern's instruct stop strings (`getInstructStoppingSequences`).

    The stop sequence, and with `sequences_as_stop_strings` the role sequences, split into
    lines, blank lines dropped, de-duplicated, each prefixed with a newline when `wrap` is on.
    Templates that open blocks (`[INST] `) contribute that opener too.
    """
    raw: list[tuple[str, str]] = [(t.stop_sequence, char)]
    if t.sequences_as_stop_strings:
        raw += [(t.input_sequence, user), (t.first_input_sequence, user), (t.last_input_sequence, user)]
        raw += [(t.output_sequence, char), (t.first_output_sequence, char), (t.last_output_sequence, char)]
        raw += [(t.system_sequence, "System"), (t.last_system_sequence, "System")]
        raw += [(t.block_prefix, user)]
    out: list[str] = []
    for text, who in raw:
        if t.macro:
            text = text.replace("{{name}}", who).replace("{{user}}", user).replace("{{char}}", char)
        for line in text.split("\n"):
            if not line.strip():
                continue
            stop = ("\n" + line) if t.wrap else line.strip()
            if stop not in out:
                out.append(stop)
    return out


def name_stops(names: Iterable[str]) -> list[str]:
    """`\\n{name}:` for each speaker whose lines the model must not write."""
    from .costs import name_stop

    out: list[str] = []
    for n in names:
        if n and name_stop(n) not in out:
            out.append(name_stop(n))
    return out


def stop_token_ids(tokenizer: Any, template: InstructTemplate | None = None) -> list[int]:
    """Token ids that end a reply: the model's end-of-generation ids (EOS, EOT, from the GGUF)
    plus the template's stop sequence and EOS when each is one special token of this vocabulary."""
    ids: set[int] = set(getattr(tokenizer, "eog_ids", ()) or ())
    eos = getattr(tokenizer, "eos_id", None)
    if eos is not None:
        ids.add(eos)
    if template is not None:
        special = getattr(tokenizer, "special_ids", frozenset())
        for text in (template.stop_sequence, template.eos_token):
            if text:
                toks = tokenizer.tokenize(text, special=True)
                if len(toks) == 1 and toks[0] in special:
                    ids.add(toks[0])
    return sorted(ids)
