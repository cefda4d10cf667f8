"""The embedded sports-plausibility task: BBH sports_understanding in miniature, offline.

A gazetteer names players and the sport each plays, and actions with the sport each belongs to.
A statement "PLAYER ACTION CONTEXT." is plausible exactly when the player's sport is the action's
sport. Every (player, action) pair is assigned once, by a fixed seed, to the held-out test set
(balanced yes/no) or to the pretraining side, so test statements are pairs the tiny model never
saw; it has to know each player's and each action's sport and compare them.

Items are rendered in BBH's own wording (``Is the following sentence plausible? "..."``) with
targets ``yes`` / ``no``, and CoT rationales in the style of BBH's exemplars
(``X is a basketball player. Shooting a free throw is part of basketball. So the answer is yes.``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

TASK_SEED = 1234
"""Fixes which pairs are held out; independent of a run's seed so every run scores the same set."""

SPORTS = ("basketball", "soccer", "football", "baseball", "hockey")
FIRST_NAMES = ("Alex", "Ben", "Carlos", "Dmitri", "Eli", "Felix", "Gabe", "Hugo", "Ivan", "Jonas", "Kai", "Leo",
               "Marco", "Nate", "Omar", "Pablo", "Quentin", "Rafael", "Sami", "Theo")
_SURNAME_HEADS = ("Al", "Bren", "Cor", "Dal", "Ev", "Fal", "Gar", "Hol", "Ive", "Jar")
_SURNAME_TAILS = ("ton", "ley", "son", "field", "wood", "man", "dale", "ridge", "worth", "by")


def _players() -> dict[str, tuple[str, ...]]:
    """100 fictional players (unique surnames), 20 per sport, assigned by a fixed shuffle."""
    surnames = [h + t for h in _SURNAME_HEADS for t in _SURNAME_TAILS]
    rng = random.Random(7)
    rng.shuffle(surnames)
    names = [f"{FIRST_NAMES[i % len(FIRST_NAMES)]} {s}" for i, s in enumerate(surnames)]
    return {sport: tuple(names[k::len(SPORTS)]) for k, sport in enumerate(SPORTS)}


PLAYERS: dict[str, tuple[str, ...]] = _players()
"""Sport -> players of that sport (the gazetteer a model has to learn)."""

ACTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "basketball": (("shot a free throw", "Shooting a free throw"), ("hit the three pointer", "Hitting a three pointer"),
                   ("scored a reverse layup", "Scoring a reverse layup"), ("made a slam dunk", "Making a slam dunk"),
                   ("committed a shooting foul", "Committing a shooting foul"),
                   ("grabbed the offensive rebound", "Grabbing an offensive rebound"),
                   ("blocked the jump shot", "Blocking a jump shot"), ("dribbled past the center", "Dribbling past the center")),
    "soccer": (("scored a penalty kick", "Scoring a penalty kick"), ("took a corner kick", "Taking a corner kick"),
               ("headed the ball into the net", "Heading the ball into the net"),
               ("earned a yellow card", "Earning a yellow card"), ("was caught offside", "Being caught offside"),
               ("scored a bicycle kick", "Scoring a bicycle kick"), ("saved the free kick", "Saving a free kick"),
               ("crossed the ball from the wing", "Crossing the ball from the wing")),
    "football": (("threw a touchdown pass", "Throwing a touchdown pass"), ("caught the screen pass", "Catching a screen pass"),
                 ("kicked a field goal", "Kicking a field goal"), ("was sacked by the linebacker", "Being sacked"),
                 ("ran for a first down", "Running for a first down"), ("fumbled the snap", "Fumbling the snap"),
                 ("scored a touchdown", "Scoring a touchdown"), ("punted the ball", "Punting the ball")),
    "baseball": (("hit a home run", "Hitting a home run"), ("struck out the batter", "Striking out a batter"),
                 ("stole second base", "Stealing second base"), ("threw a curveball", "Throwing a curveball"),
                 ("hit a grand slam", "Hitting a grand slam"), ("bunted the ball", "Bunting the ball"),
                 ("caught the fly ball", "Catching a fly ball"), ("walked to first base", "Walking to first base")),
    "hockey": (("scored on the power play", "Scoring on the power play"), ("took a slap shot", "Taking a slap shot"),
               ("made a glove save", "Making a glove save"), ("was called for icing", "Being called for icing"),
               ("skated behind the net", "Skating behind the net"),
               ("went to the penalty box", "Going to the penalty box"), ("won the faceoff", "Winning a faceoff"),
               ("hit the puck into the net", "Hitting the puck into the net")),
}
"""Sport -> actions of that sport as (past tense, gerund)."""

CONTEXTS = ("", " last night", " in the final", " on Sunday", " in the second game")
"""Neutral endings: they make statements vary without hinting at the sport."""

TASK_PREFIX = "Determine whether an artificially constructed sentence relating to sports is plausible or not."
"""The first line of BBH's sports_understanding prompt files."""

QUESTION = 'Is the following sentence plausible? "{statement}"'


@dataclass(frozen=True)
class SportsItem:
    """One statement of the embedded task, in BBH's item shape plus what a rationale needs."""

    player: str
    action: str
    context: str
    player_sport: str
    action_sport: str
    gerund: str

    @property
    def statement(self) -> str:
        return f"{self.player} {self.action}{self.context}."

    @property
    def input(self) -> str:
        """The BBH ``input`` field."""
        return QUESTION.format(statement=self.statement)

    @property
    def target(self) -> str:
        """The BBH ``target`` field: ``yes`` or ``no``."""
        return "yes" if self.player_sport == self.action_sport else "no"

    @property
    def rationale(self) -> str:
        """A BBH-style chain of thought ending in ``So the answer is yes.`` / ``no.``."""
        verdict = "match" if self.target == "yes" else "differ"
        # the closing sentence restates both sports right before the verdict: a small model compares
        # two tokens at fixed distances instead of searching the chain for them
        return (f"{self.player} is a {self.player_sport} player. {self.gerund} is part of {self.action_sport}. "
                f"The sports {self.player_sport} and {self.action_sport} {verdict}, so the answer is {self.target}.")

    def as_bbh(self) -> dict[str, str]:
        return {"input": self.input, "target": self.target}


def gazetteer_text() -> list[str]:
    """Every player, sport, action and context once (a tokenizer's corpus covers the held-out pairs too)."""
    actions = [f"{a} {g}" for acts in ACTIONS.values() for a, g in acts]
    return [*(p for ps in PLAYERS.values() for p in ps), *PLAYERS, *actions, *CONTEXTS, TASK_PREFIX]


def _pairs() -> list[tuple[str, str, str, str, str]]:
    """Every (player, player sport, action, action sport, gerund)."""
    return [(p, ps, a, asport, g) for ps, players in PLAYERS.items() for p in players
            for asport, actions in ACTIONS.items() for a, g in actions]


def _item(pair: tuple[str, str, str, str, str], context: str) -> SportsItem:
    player, player_sport, action, action_sport, gerund = pair
    return SportsItem(player, action, context, player_sport, action_sport, gerund)


def split_pairs(n_test: int = 250) -> tuple[list[SportsItem], list[tuple[str, str, str, str, str]]]:
    """``(test items, pretraining pairs)``: ``n_test`` held-out statements (half yes, half no, one
    per pair) and every other pair, which the pretraining and the few-shot pool draw from."""
    rng = random.Random(TASK_SEED)
    pairs = _pairs()
    rng.shuffle(pairs)
    yes = [p for p in pairs if p[1] == p[3]]
    no = [p for p in pairs if p[1] != p[3]]
    half = n_test // 2
    if half > 2 * len(yes) // 3:  # a third of the plausible pairs stays on the pretraining side
        raise ValueError(f"embedded task: at most {2 * (2 * len(yes) // 3)} test statements, asked {n_test}")
    held = yes[:half] + no[: n_test - half]
    test = [_item(p, rng.choice(CONTEXTS)) for p in held]
    rng.shuffle(test)
    return test, yes[half:] + no[n_test - half:]


def sample_items(pairs: list[tuple[str, str, str, str, str]], n: int, seed: int) -> list[SportsItem]:
    """``n`` statements from ``pairs``, half plausible, with random contexts (deterministic)."""
    rng = random.Random(seed)
    yes = [p for p in pairs if p[1] == p[3]]
    no = [p for p in pairs if p[1] != p[3]]
    return [_item(rng.choice(yes if i % 2 == 0 else no), rng.choice(CONTEXTS)) for i in range(n)]


def test_items(n_test: int = 250) -> list[SportsItem]:
    return split_pairs(n_test)[0]


def pool_items(n_test: int = 250, n: int = 200, seed: int = TASK_SEED + 1) -> list[SportsItem]:
    """The few-shot pool: statements of pretraining pairs (never a held-out pair)."""
    return sample_items(split_pairs(n_test)[1], n, seed)


def cot_prompt_text(n_test: int = 250) -> str:
    """Three exemplars with rationales, in the format of BBH's ``cot-prompts/*.txt`` (two yes, one no)."""
    pool = pool_items(n_test, 40, seed=TASK_SEED + 2)
    chosen = [next(i for i in pool if i.target == "yes"), next(i for i in pool if i.target == "no"),
              [i for i in pool if i.target == "yes"][1]]
    blocks = [f"Q: {i.input}\nA: Let's think step by step. {i.rationale}" for i in chosen]
    return TASK_PREFIX + "\n\n" + "\n\n".join(blocks)
