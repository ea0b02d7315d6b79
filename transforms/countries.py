"""Partner-country names and codes -> ISO 3166-1 alpha-3, through pycountry plus the steward alias table."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from itertools import permutations
from typing import Literal

import numpy as np
import pandas as pd
import pycountry
from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, Indel

from transforms.text import STR, as_text, fold_key, per_unique


def build_country_lookup(aliases: pd.DataFrame) -> pd.DataFrame:
    """(key, iso3) for every ISO code, pycountry name and steward alias; steward aliases win."""
    rows: list[tuple[str, str]] = []
    for c in pycountry.countries:
        for name in (c.alpha_2, c.alpha_3, c.name, getattr(c, "official_name", None), getattr(c, "common_name", None)):
            if name:
                rows.append((name, c.alpha_3))
    for c in pycountry.historic_countries:  # former states keep their own code (flagged in dim_country)
        for name in (c.alpha_3, c.name):
            if name:
                rows.append((name, c.alpha_3))
    lib = pd.DataFrame(rows, columns=["alias", "iso3"])
    steward = aliases[["alias", "iso3"]].copy()
    both = pd.concat([steward, lib], ignore_index=True)
    both["key"] = fold_key(as_text(both["alias"]))
    both = both.dropna(subset=["key"]).drop_duplicates("key", keep="first")
    return both[["key", "iso3", "alias"]].reset_index(drop=True)


def map_countries(cells: pd.Series, lookup: pd.DataFrame) -> pd.Series:
    """Country cells -> ISO alpha-3 (NA where unknown). Vectorised: one hash lookup per row."""
    mapping = pd.Series(lookup["iso3"].to_numpy(), index=lookup["key"].to_numpy())
    return per_unique(cells, lambda u: fold_key(u).map(mapping), STR)


# Did-you-mean suggestions that cannot point to a different entity.
#
# A suggestion is a *typo* correction, never a guess about meaning. The unknown value and the candidate are cut
# into word tokens and must pair up one to one (same number of tokens, any order); each pair must be equal or a
# small typo apart; a value token that is itself a real word (a word of some known name, a qualifier, an
# organisation word) may only pair with the same word. So "DR Congo" can reach "Congo, DR" but never "Congo",
# "East Germany" never "Germany", "Dominican" never "Dominica", "United Nations" never "United Kingdom". Then the
# best entity must beat every other entity outright: "Nigera" (one edit from Niger and from Nigeria) gets nothing.


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_MIN_CHARS = 4  # letters/digits in a value below which it is a code or an acronym, never a typo
_STOPWORDS = frozenset({"the", "of", "and", "de", "la", "le", "du"})
_SYNONYMS = {"st": "saint", "ste": "sainte"}
#: words that make a different entity out of the same stem (South Sudan, Equatorial Guinea, DR Congo, Papua New
#: Guinea): real words, so a value's "West" never pairs with a candidate's "East"
_QUALIFIERS = _words(
    "north south east west northern southern eastern western central equatorial democratic republic republics "
    "peoples people dr drc new papua bissau upper lower greater lesser federal federated islamic socialist "
    "independent plurinational united arab kingdom states emirates saint sainte"
)
#: an unknown country value with one of these words names an organisation or a grouping, not a country
_ORGANISATION = _words(
    "union unions nations nation un uno eu au nato otan gcc asean opec oic ecowas sadc osce oecd imf icrc unhcr "
    "unicef undp unrwa wfp who iaea league council councils organisation organization organisations "
    "organizations alliance commission community communities cooperation coalition secretariat "
    "agency bank fund programme program committee treaty pact forum partnership initiative institute association "
    "mission headquarters command multilateral bilateral various unallocated unspecified regional international "
    "global worldwide multiple several"
)
#: ... or a former state in a spelling the reference does not know (a former state the reference lists maps)
_FORMER = _words("former formerly ex pre empire ssr")
#: names of former states and regions: real words, never typos of a country (Prussia is not Russia)
_OTHER_NAMES = _words(
    "prussia rhodesia persia siam ceylon burma ottoman bohemia moravia dahomey tanganyika zanzibar abyssinia "
    "manchukuo biafra transvaal formosa kampuchea soviet yugoslav gdr frg brd ddr africa america americas asia "
    "europe oceania caribbean balkans scandinavia levant maghreb sahel gulf arabia"
)
_Kind = Literal["auto", "country", "label"]


def _tokens(key: str) -> tuple[str, ...]:
    """Folded key -> word tokens: accents dropped, dotted abbreviations joined (D.R. -> dr), stopwords dropped."""
    text = "".join(ch for ch in unicodedata.normalize("NFKD", key) if unicodedata.category(ch) != "Mn")
    text = re.sub(r"[.'\u2019`]", "", text.casefold().replace("&", " and "))
    words = (_SYNONYMS.get(w, w) for w in re.findall(r"\w+", text))
    return tuple(w for w in words if w not in _STOPWORDS)


def _allowed_edits(a: str, b: str) -> int:
    shorter = min(len(a), len(b))
    return 0 if shorter < 4 else 1 if shorter < 9 else 2


def _derived(a: str, b: str) -> bool:
    """One word is the other plus an ending (Americas / America, Nigerian / Nigeria, Niger / Nigeria): a different
    word, not a typo. A doubled last letter (Jordann) is a typo."""
    short, long_ = sorted((a, b), key=len)
    return short != long_ and long_.startswith(short) and long_[len(short) :].strip(short[-1:]) != ""


def _same_words(cand_tokens: list[tuple[str, ...]]) -> list[object]:
    """Without entity codes: spellings with the same words (Korea, South / South Korea) or the same letters
    (Viet Nam / Vietnam) are taken for one entity."""
    parent = list(range(len(cand_tokens)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for key in (lambda t: tuple(sorted(t)), "".join):
        first: dict[object, int] = {}
        for i, toks in enumerate(cand_tokens):
            parent[root(i)] = root(first.setdefault(key(toks), i))
    return [root(i) for i in range(len(cand_tokens))]


def _is_country_list(choices: list[str]) -> bool:
    known = set(choices)
    names = [c.name.casefold() for c in pycountry.countries]
    return sum(n in known for n in names) * 2 >= len(names)


def _letters(tokens: tuple[str, ...]) -> np.ndarray:
    counts = np.zeros(64, dtype="int64")
    for ch in "".join(tokens):
        counts[ord(ch) % 64] += 1  # shared buckets only shrink the difference: still a lower bound
    return counts


@dataclass(frozen=True)
class _Matcher:
    """The known spellings of one suggest() call, tokenised once."""

    cand_tokens: list[tuple[str, ...]]
    entity: list[object]  # per candidate: whose spelling it is (ISO3, category code, or a group of same words)
    country: bool
    cutoff: float
    vocabulary: frozenset[str] = field(init=False)
    letters: np.ndarray = field(init=False)  # per candidate: letter counts (hashed), to skip the hopeless at once
    lengths: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        words = frozenset(t for toks in self.cand_tokens for t in toks)
        extra = _QUALIFIERS | _ORGANISATION | _FORMER | _OTHER_NAMES if self.country else frozenset()
        object.__setattr__(self, "vocabulary", words | extra)
        object.__setattr__(self, "letters", np.stack([_letters(t) for t in self.cand_tokens] or [_letters(())]))
        object.__setattr__(self, "lengths", np.array([len(" ".join(t)) for t in self.cand_tokens], dtype="int64"))

    def pair_cost(self, v: str, c: str, strict: bool) -> int | None:
        """Edits to turn value token v into candidate token c, or None when v cannot be a typo of c. Loose (not
        strict): the edit count alone, to find every entity a value is close to."""
        if v == c:
            return 0
        if strict:
            if v in self.vocabulary:  # a real word is not a typo of another (Dominican / Dominica, west / east)
                return None
            if self.country and (v[0] != c[0] or _derived(v, c)):  # typos keep the first letter (Prussia / Russia)
                return None
        cost = OSA.distance(v, c)
        return cost if cost <= _allowed_edits(v, c) else None

    def align(self, value: tuple[str, ...], cand: tuple[str, ...], strict: bool) -> tuple[int, str] | None:
        """Cheapest one-to-one pairing of the value's tokens with the candidate's (any order): (edits, candidate
        tokens in the value's order), or None when no pairing is a set of typos."""
        cost = [[self.pair_cost(v, c, strict) for c in cand] for v in value]
        if any(all(x is None for x in row) for row in cost):
            return None
        orders = permutations(range(len(cand))) if len(cand) <= 6 else iter([tuple(range(len(cand)))])
        best: tuple[int, str] | None = None
        for order in orders:
            pairs = [cost[i][j] for i, j in enumerate(order)]
            if all(x is not None for x in pairs):
                edits = sum(x for x in pairs if x is not None)
                if best is None or edits < best[0]:
                    best = (edits, " ".join(cand[j] for j in order))
        return best

    def score(self, value: tuple[str, ...], cand: tuple[str, ...], strict: bool) -> tuple[int, int] | None:
        """(edits, indel distance) from the value to the candidate, or None when it is no typo of it."""
        if len(cand) == len(value):
            aligned = self.align(value, cand, strict)
            if aligned is None:
                return None
            edits, right = aligned
            left = " ".join(value)
        else:  # the same letters, spaced differently: Viet Nam / Vietnam, Guineabissau / Guinea-Bissau
            left, right = "".join(value), "".join(cand)
            edits = OSA.distance(left, right)
            if edits > (1 if min(len(left), len(right)) >= 9 else 0):
                return None
            if strict and self.country and (left[0] != right[0] or _derived(left, right)):
                return None
        if fuzz.ratio(left, right) < self.cutoff:
            return None
        return edits, Indel.distance(left, right)

    def best(self, key: str) -> int | None:
        """Index of the one candidate a typo of ``key`` can mean, or None."""
        value = _tokens(key)
        joined = "".join(value)
        if len(joined) < _MIN_CHARS or not any(ch.isalpha() for ch in joined):
            return None  # a code or an acronym (DRC, ROK, UN): a guess, not a typo
        if self.country and any(t in _ORGANISATION or t in _FORMER for t in value):
            return None  # an organisation, a grouping or a former state: no country is the same entity
        typo_of: dict[object, tuple[int, int, int]] = {}  # entity -> (edits, indel, index) of its closest spelling
        near: dict[object, tuple[int, int]] = {}  # every entity the value is a few edits from, typo or not
        # the indel distance is at least the difference in letter counts: the cutoff rules most candidates out
        gap = np.abs(self.letters[: len(self.cand_tokens)] - _letters(value)).sum(axis=1)
        within = gap * 100 <= (100 - self.cutoff) * (self.lengths + len(" ".join(value))) + 1e-6
        for i in np.flatnonzero(within).tolist():
            cand = self.cand_tokens[i]
            loose = self.score(value, cand, strict=False)
            if loose is None:
                continue
            ent = self.entity[i]
            near[ent] = min(near.get(ent, loose), loose)
            strict = self.score(value, cand, strict=True)
            if strict is not None and (ent not in typo_of or (*strict, i) < typo_of[ent]):
                typo_of[ent] = (*strict, i)
        if not typo_of:
            return None
        winner, (edits, indel, index) = min(typo_of.items(), key=lambda kv: kv[1])
        for ent, rival in near.items():
            # countries: another entity as few edits away makes the value ambiguous (Nigera: Niger or Nigeria?)
            # labels: a missing or extra letter beats a wrong one (Joint Exercies -> Joint Exercises, not Exercise)
            if ent != winner and (rival[0] <= edits if self.country else rival <= (edits, indel)):
                return None
        return index


def suggest(
    values: pd.Series,
    choices: pd.Series,
    labels: pd.Series | None = None,
    cutoff: float = 80.0,
    *,
    entities: pd.Series | None = None,
    kind: _Kind = "auto",
) -> pd.Series:
    """A "did you mean" for each distinct unknown value, or NA: a known spelling (from ``labels``, aligned with
    ``choices``) only when the value is a typo of exactly one entity, so accepting it cannot corrupt the data.

    ``entities`` (aligned with ``choices``, e.g. ISO3 codes or category codes) lets different spellings of the same
    entity count as one; without it, spellings with the same words count as one. ``kind="country"`` adds the
    country rules (organisations and "former" values get no suggestion, qualifier words such as South or Equatorial
    must match, a tie between two entities means no suggestion); ``kind="label"`` (category labels) breaks ties by
    the simpler typo; ``"auto"`` picks "country" when ``choices`` holds the ISO country names. ``cutoff`` is the
    minimal rapidfuzz ratio between the value and the suggestion. Runs per distinct value only."""
    labels = (choices if labels is None else labels).reset_index(drop=True)
    choices = choices.reset_index(drop=True)
    ents = choices if entities is None else entities.reset_index(drop=True)
    long_enough = (choices.str.len() >= 4).fillna(False).astype(bool)  # codes (AT, AUT) are no useful suggestion
    choices, labels, ents = (s[long_enough].reset_index(drop=True) for s in (choices, labels, ents))
    choice_list = [str(c) for c in choices]
    if kind == "auto":
        kind = "country" if _is_country_list(choice_list) else "label"
    cand_tokens = [_tokens(c) for c in choice_list]
    entity: list[object] = _same_words(cand_tokens) if entities is None else [str(e) for e in ents]
    matcher = _Matcher(cand_tokens, entity, country=kind == "country", cutoff=cutoff)
    keys = fold_key(as_text(values))
    out: dict[str, str] = {}
    for key in keys.dropna().unique():
        hit = matcher.best(str(key))
        if hit is not None:
            out[key] = str(labels.iloc[hit])
    return keys.map(out).astype(pd.StringDtype("pyarrow"))
