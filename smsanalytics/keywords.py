"""Opt-out and opt-in keywords: the list, and how a body is normalised to compare with it.

A body *is* a keyword when, without accents, punctuation, repeated spaces and case, it
equals one (``"Arrêt !"`` is ``ARRET``). Conversion stores that keyword in the ``keyword``
column, so the question still has an answer when bodies are redacted; the analysis
questions take their own list too.
"""

from __future__ import annotations

import unicodedata

__all__ = ["DEFAULT_KEYWORDS", "NORMALISED_BODY_SQL", "normalise_keyword", "keyword_sql"]

#: Keyword -> meaning. Carriers and regulators (CTIA in the US, the French SMS+ rules)
#: require honouring these; the list is a parameter wherever it is used.
DEFAULT_KEYWORDS: dict[str, str] = {
    "STOP": "opt-out",
    "STOPALL": "opt-out",
    "STOP ALL": "opt-out",
    "STOP SMS": "opt-out",
    "UNSUBSCRIBE": "opt-out",
    "CANCEL": "opt-out",
    "END": "opt-out",
    "QUIT": "opt-out",
    "OPTOUT": "opt-out",
    "OPT OUT": "opt-out",
    "ARRET": "opt-out",
    "ARRETER": "opt-out",
    "DESABONNER": "opt-out",
    "DESINSCRIRE": "opt-out",
    "DESINSCRIPTION": "opt-out",
    "BAJA": "opt-out",
    "START": "opt-in",
    "UNSTOP": "opt-in",
    "SUBSCRIBE": "opt-in",
    "OPTIN": "opt-in",
    "OPT IN": "opt-in",
    "RESUME": "opt-in",
}

#: DuckDB SQL normalising ``body_text`` the way :func:`normalise_keyword` does.
NORMALISED_BODY_SQL = (
    "upper(trim(regexp_replace(regexp_replace(strip_accents(body_text), "
    "'[^\\p{L}\\p{N}\\s]', '', 'g'), '\\s+', ' ', 'g')))"
)


def normalise_keyword(text: str) -> str:
    """Normalise a body or keyword as the SQL does: no accents or punctuation, upper case.

    Examples
    --------
    >>> normalise_keyword("  Arrêt ! ")
    'ARRET'
    """
    decomposed = unicodedata.normalize("NFD", text)
    no_accents = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    no_punct = "".join(ch for ch in no_accents if ch.isalnum() or ch.isspace())
    return " ".join(no_punct.split()).upper()


def keyword_sql(keywords: dict[str, str] | None = None) -> str:
    """SQL giving the keyword ``body_text`` is (normalised), or NULL if it is none.

    Only short bodies are normalised: a keyword message is a word or two, and the
    regular expressions are the costly part.
    """
    words = sorted({normalise_keyword(k) for k in (keywords or DEFAULT_KEYWORDS)})
    listing = ", ".join("'" + w.replace("'", "''") + "'" for w in words)
    return (
        f"CASE WHEN length(body_text) <= 40 AND {NORMALISED_BODY_SQL} IN ({listing}) "
        f"THEN {NORMALISED_BODY_SQL} END"
    )
