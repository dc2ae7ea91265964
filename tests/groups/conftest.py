"""Group-chat fixtures: the project's three-member sample roster (cards/skerry-light.roster.yaml)
loaded from its real files, and a small roster of names that prefix each other (Ann, Anna)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rp_context.cards.io import load_card
from rp_context.cards.model import Card
from rp_context.cards.roster import GroupRoster, load_roster


@dataclass
class Cast:
    roster: GroupRoster
    cards: list[Card]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cards]

    def with_roster(self, **update: Any) -> Cast:
        return Cast(self.roster.model_copy(update=update), self.cards)

    def with_card(self, name: str, **extensions: Any) -> Cast:
        """A copy where card `name` has these extensions set (talkativeness, depth_prompt...)."""
        cards = []
        for c in self.cards:
            if c.name == name:
                data = c.data.model_copy(update={"extensions": {**c.data.extensions, **extensions}})
                c = c.model_copy(update={"data": data})
            cards.append(c)
        return Cast(self.roster, cards)

    def key(self, name: str) -> str:
        return self.roster.members[self.names.index(name)]


@pytest.fixture(scope="session")
def sample_roster_path(repo_dir: Path) -> Path:
    path = repo_dir / "cards" / "skerry-light.roster.yaml"
    assert path.is_file(), "the project's sample roster is missing"
    return path


@pytest.fixture(scope="session")
def skerry(sample_roster_path: Path) -> Cast:
    """The sample roster and its three cards (JSON, PNG and YAML), loaded as a user would."""
    rf = load_roster(sample_roster_path)
    cards = [load_card(p).card for p in rf.member_paths()]
    assert len(cards) == 3
    return Cast(rf.roster, cards)


def make_card(name: str, **data: Any) -> Card:
    return Card.model_validate({"spec": "chara_card_v2", "spec_version": "2.0", "data": {"name": name, **data}})


@pytest.fixture()
def prefixes() -> Cast:
    """Ann, Anna and Annabel Lee: names that start with each other."""
    cards = [
        make_card("Ann", description="{{char}} keeps the ferry.", extensions={"talkativeness": 0}),
        make_card("Anna", description="{{char}} mends nets.", extensions={"talkativeness": 0}),
        make_card("Annabel Lee", description="{{char}} sings.", extensions={"talkativeness": 0}),
    ]
    roster = GroupRoster(members=["ann.json", "anna.json", "annabel.json"], name="Quay")
    return Cast(roster, cards)
