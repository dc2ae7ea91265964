"""A model's own template: which template a GGUF model speaks, and resolving a `--template` or
`--preset` argument that names a family, a preset file, a `.jinja` file or `gguf:MODEL`."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from .detect import detect_family
from .errors import TemplateError
from .models import resolve_model
from .presets.families import get_family
from .presets.library import read_preset
from .reasoning import switch_prefills
from .templates.jinja import JinjaTemplate
from .templates.model import InstructTemplate
from .tokens import LlamaTokenizer

__all__ = [
    "instruct_from_model_template",
    "is_model_template_spec",
    "model_template",
    "resolve_template",
    "template_for_model",
]


def template_for_model(path: str | Path | None = None, tokenizer: Any = None, *, prefer_jinja: bool = False) -> Any:
    """The template a model speaks, from its GGUF metadata (see `detect.detect_family`).

    With `prefer_jinja` and an embedded chat template, the model's own Jinja template. Otherwise
    the family that renders the embedded template byte for byte, else the model's own template
    (as an instruct template read from it, or the Jinja template itself): never a guess. A model
    without a template gets a guessed family and a visible warning (`warnings.warn`, UserWarning).
    """
    tok = tokenizer or LlamaTokenizer(resolve_model(path))
    meta = tok.metadata()
    chat_template = meta.get("tokenizer.chat_template") or None
    if prefer_jinja and chat_template:
        return JinjaTemplate.from_gguf(tok.path, tok)
    guess = detect_family(
        chat_template,
        meta.get("general.architecture"),
        meta.get("general.name"),
        bos_token=tok.token_text(tok.bos_id) if tok.bos_id is not None else None,
        eos_token=tok.token_text(tok.eos_id) if tok.eos_id is not None else None,
        template_name=f"gguf:{tok.path.name}",
    )
    if guess.warning:
        warnings.warn(f"{tok.path.name}: {guess.warning}", UserWarning, stacklevel=2)
    return guess.template if guess.template is not None else get_family(guess.family)


def resolve_template(spec: str, *, model: str | Path | None = None) -> Any:
    """A `--template` argument: a family name, `auto` (detect from the model), `gguf:MODEL.gguf`,
    a `.jinja` file, or a preset file (our YAML or SillyTavern instruct JSON)."""
    if spec == "auto":
        return template_for_model(model)
    if is_model_template_spec(spec):
        return model_template(spec)
    p = Path(spec).expanduser()
    if p.suffix.lower() in {".yaml", ".yml", ".json"} or "/" in spec:
        preset = read_preset(p)
        if not isinstance(preset, InstructTemplate):
            raise TemplateError(f"{p}: is not an instruct preset")
        return preset
    return get_family(spec)


def is_model_template_spec(spec: str) -> bool:
    """Whether a `--template`/`--preset` argument names a model's own template (`gguf:MODEL`,
    `gguf:` for the default model, or a `.jinja` file)."""
    return spec.startswith("gguf:") or spec.lower().endswith(".jinja")


def model_template(spec: str) -> Any:
    """The Jinja template `spec` names, with its model's BOS/EOS text for `gguf:`."""
    if spec.startswith("gguf:"):
        return JinjaTemplate.from_gguf(resolve_model(spec[len("gguf:") :] or None))
    return JinjaTemplate.from_file(Path(spec).expanduser())


def instruct_from_model_template(spec: str) -> InstructTemplate:
    """A model's own template where an instruct preset goes: the family that renders it byte for
    byte, or its role markers read off its own renders (checked the same way). TemplateError
    saying why when neither renders it exactly (its turns are not plain role markers)."""
    jinja = model_template(spec)
    guess = detect_family(jinja.source, bos_token=jinja.bos_token or None,
                          eos_token=jinja.eos_token or None, template_name=jinja.name)
    if isinstance(guess.template, InstructTemplate):
        prefills = switch_prefills(jinja.source, lambda extra: JinjaTemplate(
            jinja.source, bos_token=jinja.bos_token or None, eos_token=jinja.eos_token or None,
            extra_context=extra).render_text([{"role": "user", "content": "Hi"}]))
        if not prefills:
            return guess.template
        reasoning = guess.template.reasoning.model_copy(update=prefills)
        return guess.template.model_copy(update={"reasoning": reasoning})
    hint = f"; --preset {guess.nearest} is llama.cpp's nearest builtin" if guess.nearest else ""
    raise TemplateError(f"{spec}: cannot be used as an instruct template: {guess.reason}{hint}")
