"""The whole path from files to a fitted prompt: resolve a preset bundle, load cards and chat, assemble, fit.

The command line, the app and library callers all go through here, so they build the same prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .assembly import AssembledPrompt, AssemblyCache, AssemblySettings, assemble
from .budget import BudgetCache, FittedPrompt, fit_prompt
from .cards import Card, GroupRoster, Persona, load_card, load_persona, load_roster
from .chat import Chat, ChatHeader, Opening, load_chat
from .chatcontext import chat_id
from .errors import PresetError
from .flatten import Mode
from .group import group_greetings
from .policy import BudgetPolicy
from .presets.library import load_preset, read_preset
from .presets.models import BundlePreset, ContextPreset, SysPromptPreset
from .sampling import SamplerSettings
from .templates.model import InstructTemplate
from .tokens import TokenCounter

__all__ = ["Setup", "load_setup", "Cast", "load_cast", "build_prompt", "DEFAULT_BUNDLE"]

DEFAULT_BUNDLE = "default"
DEFAULT_BUDGET = "full-window"
"""The budget policy when neither `--budget` nor the bundle names one."""


@dataclass
class Setup:
    """One preset of each kind: how the prompt is formatted, sampled and fitted."""

    instruct: InstructTemplate
    context: ContextPreset
    sysprompt: SysPromptPreset
    sampler: SamplerSettings
    budget: BudgetPolicy
    name: str = ""


def load_setup(spec: str | Path | None = None, *, budget: str | Path | None = None) -> Setup:
    """A bundle name, a family name (with the default context and system prompt), a preset file,
    or a model's own template (`gguf:MODEL`, a `.jinja` file) as the instruct template."""
    from .modeltemplates import instruct_from_model_template, is_model_template_spec

    spec = str(spec) if spec else DEFAULT_BUNDLE
    path = Path(spec).expanduser()
    looks_like_path = path.suffix.lower() in {".yaml", ".yml", ".json"} or "/" in spec
    preset: Any
    if is_model_template_spec(spec):
        preset = instruct_from_model_template(spec)
    elif looks_like_path:
        preset = read_preset(path)
    else:
        preset = None
        for kind in ("bundle", "instruct"):
            try:
                preset = load_preset(spec, kind)
                break
            except PresetError:
                continue
        if preset is None:
            raise PresetError(None, f"no bundle or instruct family named {spec!r} (see `rp-context preset list`)")
    if isinstance(preset, BundlePreset):
        bundle = preset
        instruct = (instruct_from_model_template(bundle.instruct) if is_model_template_spec(bundle.instruct)
                    else load_preset(bundle.instruct, "instruct"))
    elif isinstance(preset, InstructTemplate):
        bundle = load_preset(DEFAULT_BUNDLE, "bundle")  # its context, system prompt, sampler
        assert isinstance(bundle, BundlePreset)
        instruct = preset
    else:
        raise PresetError(path if looks_like_path else None, "is not a bundle or an instruct preset")
    context = load_preset(bundle.context, "context")
    sysprompt = load_preset(bundle.sysprompt, "sysprompt")
    sampler = load_preset(bundle.sampler, "sampler")
    policy_name = budget or bundle.budget or DEFAULT_BUDGET
    policy = load_preset(policy_name, "budget")
    assert isinstance(instruct, InstructTemplate)
    assert isinstance(context, ContextPreset) and isinstance(sysprompt, SysPromptPreset)
    settings = SamplerSettings(**sampler.model_dump(exclude={"name", "description"}))
    budget_policy = BudgetPolicy(**policy.model_dump())
    return Setup(instruct, context, sysprompt, settings, budget_policy, name=spec)


@dataclass
class Cast:
    """Who is in the chat: the cards (roster order), the roster (None one-on-one), the persona."""

    cards: list[Card]
    roster: GroupRoster | None = None
    persona: Persona | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [c.data.name for c in self.cards]

    @property
    def greetings(self) -> list[str]:
        """The first card's greeting and its alternate greetings, in card order (empty ones left out)."""
        data = self.cards[0].data
        return [g for g in (data.first_mes, *data.alternate_greetings) if g]

    def openings(self, greeting: int, *, seed: str) -> list[Opening]:
        """Who greets a new chat: the first card with greeting `greeting`, or in a group every
        member (group-only greetings included, each picked by `seed`, the new chat's id)."""
        if self.roster is None or len(self.cards) < 2:
            return [Opening(self.cards[0].data.name, self.greetings, greeting)]
        return [Opening(g.member, list(g.options), g.index)
                for g in group_greetings(self.roster, self.cards, seed=seed)]


def load_cast(
    cards: Sequence[str | Path],
    *,
    roster: str | Path | None = None,
    persona: str | Path | None = None,
) -> Cast:
    """Load card files (and a roster's members); several cards without a roster form a join group."""
    warnings: list[str] = []
    loaded: list[Card] = []
    the_roster: GroupRoster | None = None
    if roster is not None:
        rf = load_roster(Path(roster).expanduser())
        warnings += [f"{roster}: {w}" for w in rf.warnings]
        the_roster = rf.roster
        for path in rf.member_paths():
            cf = load_card(path)
            warnings += [f"{path}: {w}" for w in cf.warnings]
            loaded.append(cf.card)
    for c in cards:
        cf = load_card(c)
        warnings += [f"{c}: {w}" for w in cf.warnings]
        loaded.append(cf.card)
    if the_roster is None and len(loaded) > 1:
        the_roster = GroupRoster(
            name=", ".join(c.data.name for c in loaded),
            members=[c.data.name for c in loaded],
            generation_mode="join",
            activation="list",
        )
    the_persona = None
    if persona is not None:
        pf = load_persona(persona)
        warnings += [f"{persona}: {w}" for w in pf.warnings]
        the_persona = pf.persona
    return Cast(loaded, the_roster, the_persona, warnings)


def new_chat(cast: Cast, *, user: str = "User", greeting: int = 0) -> Chat:
    """A new chat: the first card's greeting `greeting` with its other greetings as swipes, or in
    a group each member's greeting (picked by a seed from the new chat's id)."""
    # looked up per call: the app's snapshot tests freeze the clock in rp_context.chat
    from .chat import st_timestamp

    header = ChatHeader(user_name=user, character_name=cast.cards[0].data.name, create_date=st_timestamp())
    chat = Chat(header=header, messages=[])
    chat.start(cast.openings(greeting, seed=chat_id(chat)))
    return chat


def read_chat(path: str | Path) -> tuple[Chat, list[str]]:
    """Load a chat file (lines cut off mid-JSON are reported, never dropped from the file)."""
    cf = load_chat(path)
    return cf.chat, [f"{path}: {w}" for w in cf.warnings]


@dataclass
class PromptCache:
    """What one chat's turns reuse from the turn before: its message segments, their token costs,
    its grouped rounds and rendered turns. Hold one per chat (a session does) and pass it to
    every `build_prompt`."""

    assembly: AssemblyCache = field(default_factory=AssemblyCache)
    budget: BudgetCache = field(default_factory=BudgetCache)


def build_prompt(
    cast: Cast,
    chat: Chat,
    setup: Setup,
    counter: TokenCounter,
    *,
    n_ctx: int,
    reserve: int | None = None,
    speaker: str | None = None,
    mode: Mode = "normal",
    settings: AssemblySettings | None = None,
    previous_ids: Sequence[int] | None = None,
    cache: PromptCache | None = None,
) -> FittedPrompt:
    """Assemble and fit the prompt for the next reply; a caller that builds one turn after
    another keeps a `PromptCache` and passes it as `cache`, so each turn redoes only what changed."""
    settings = settings or AssemblySettings()
    if settings.keyword_lore is None:  # the caller's choice stands; unset, the policy's applies
        settings = settings.model_copy(update={"keyword_lore": setup.budget.keyword_lore})
    assembled: AssembledPrompt = assemble(
        cards=cast.cards,
        chat=chat,
        instruct=setup.instruct,
        context=setup.context,
        sysprompt=setup.sysprompt,
        persona=cast.persona,
        roster=cast.roster,
        speaker=speaker,
        settings=settings,
        mode=mode,
        counter=counter,
        max_context=n_ctx,
        cache=cache.assembly if cache else None,
    )
    return fit_prompt(
        assembled,
        counter,
        n_ctx=n_ctx,
        reserve=setup.sampler.max_tokens if reserve is None else reserve,
        policy=setup.budget,
        previous_ids=previous_ids,
        cache=cache.budget if cache else None,
    )
