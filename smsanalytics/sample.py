"""Realistic synthetic Callr inbound-SMS archives, for demos, tests and benchmarks.

This module owns the sample data: :func:`write_sample` writes an archive folder holding every
Callr shape and every container the loader accepts, with the nasty-but-valid details and the
broken records real archives have, and returns a :class:`SampleManifest` of the true counts,
known by construction. :func:`write_webhook_jsonl` writes a large file of bare webhook payloads
fast, for benchmarks.

Everything is synthetic and deterministic: the same ``seed`` gives the same bytes (with the
same version of ``phonenumbers``, whose metadata decides which numbers are valid). Times lie
in 2025-01-01 .. 2025-06-30 UTC; nothing depends on the clock, the network or the global
random generator.

Any size: messages are made in chunks of up to 50,000 (:data:`_CHUNK`), each a complete
small archive, and streamed to the files, so memory does not grow with ``n``. Up to one
chunk the bytes are those the generator wrote when it held everything in memory.

What the data looks like (facts the tests rely on):

* Senders are valid mobile numbers (``phonenumbers.is_valid_number``) from twelve countries,
  long-tailed: a few frequent senders, many one-offs. Their ``network`` is a real MCC-MNC of
  their country (:data:`NETWORKS`), usually the operator the number range was allocated to
  (numbers are portable, so not always), sometimes empty.
* ``encoding`` and ``parts`` follow GSM 03.38 / UCS-2 segmentation of the body, except for
  about 1 % of deliberate billing discrepancies (:attr:`SampleManifest.discrepancies`). Bodies
  never sit on a boundary where splitting rules could disagree (an escape pair or a surrogate
  pair straddling a segment), so any correct counter agrees with the data.
* ``cost`` (webhook) and ``billingDebit`` (Actions) are exactly ``parts`` times the sender
  country's per-part rate in cents (:data:`RATE_CARD`, :func:`rate_for`); France's rate
  changes on 2025-04-01.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import heapq
import itertools
import json
import math
import os
import random
import shutil
import struct
import tempfile
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import phonenumbers
import yaml
import zstandard
from phonenumbers import PhoneNumberType, carrier, geocoder

from .errors import ArgumentError

__all__ = [
    "NETWORKS",
    "RATE_CARD",
    "REJECT_KINDS",
    "SampleManifest",
    "rate_for",
    "write_manifest",
    "write_sample",
    "write_webhook_jsonl",
]

# --------------------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------------------

#: Real MCC-MNC codes used as ``network``, by sender country (ISO 3166-1 alpha-2), with the
#: operator's brand.
NETWORKS: dict[str, dict[str, str]] = {
    "FR": {"20801": "Orange", "20810": "SFR", "20815": "Free Mobile", "20820": "Bouygues Telecom"},
    "DE": {"26201": "Telekom", "26202": "Vodafone", "26203": "O2 (Telefonica)"},
    "GB": {"23410": "O2", "23415": "Vodafone", "23420": "Three", "23430": "EE"},
    "ES": {"21401": "Vodafone", "21403": "Orange", "21404": "Yoigo", "21407": "Movistar"},
    "IT": {"22201": "TIM", "22210": "Vodafone", "22288": "WindTre"},
    "BE": {"20601": "Proximus", "20610": "Orange Belgium", "20620": "BASE"},
    "US": {"310260": "T-Mobile", "311480": "Verizon", "310410": "AT&T"},
    "BR": {"72402": "TIM", "72405": "Claro", "72406": "Vivo", "72410": "Vivo", "72431": "Oi"},
    "MA": {"60400": "Orange Maroc", "60401": "Maroc Telecom", "60402": "inwi"},
    "SN": {"60801": "Orange", "60802": "Free (Yas)", "60803": "Expresso"},
    "RU": {"25001": "MTS", "25002": "MegaFon", "25020": "Tele2", "25099": "Beeline"},
    "SA": {"42001": "STC", "42003": "Mobily", "42004": "Zain"},
}

# Substring of the libphonenumber carrier name -> MCC-MNC of that operator, to pick the
# range holder's network most of the time.
_BRAND_NETWORK: dict[str, tuple[tuple[str, str], ...]] = {
    "FR": (("Orange", "20801"), ("SFR", "20810"), ("Free", "20815"), ("Bouygues", "20820")),
    "DE": (("T-Mobile", "26201"), ("Vodafone", "26202"), ("Eplus", "26203"), ("O2", "26203")),
    "GB": (
        ("O2", "23410"),
        ("Vodafone", "23415"),
        ("Three", "23420"),
        ("EE", "23430"),
        ("Orange", "23430"),
    ),
    "ES": (("Vodafone", "21401"), ("Orange", "21403"), ("Yoigo", "21404"), ("Movistar", "21407")),
    "IT": (("TIM", "22201"), ("Vodafone", "22210"), ("WIND", "22288"), ("3 Italia", "22288")),
    "BE": (("Proximus", "20601"), ("Orange", "20610"), ("Telenet", "20620")),
    "BR": (("TIM", "72402"), ("Claro", "72405"), ("Vivo", "72406"), ("Oi", "72431")),
    "MA": (("Orange", "60400"), ("Maroc Telecom", "60401"), ("Inwi", "60402")),
    "SN": (("Orange", "60801"), ("Yas", "60802"), ("Free", "60802"), ("Expresso", "60803")),
    "RU": (("MTS", "25001"), ("MegaFon", "25002"), ("T2", "25020"), ("Beeline", "25099")),
    "SA": (("STC", "42001"), ("Mobily", "42003"), ("Zain", "42004")),
}

# region -> (country calling code, leading digits of mobile ranges, national number length,
# share of senders).
_COUNTRIES: dict[str, tuple[int, tuple[str, ...], int, float]] = {
    "FR": (33, ("6", "7"), 9, 0.52),
    "BE": (32, ("46", "47", "48", "49"), 9, 0.07),
    "DE": (
        49,
        ("151", "152", "157", "160", "162", "170", "171", "172", "176", "177", "179"),
        11,
        0.05,
    ),
    "GB": (44, ("7",), 10, 0.05),
    "ES": (34, ("6",), 9, 0.05),
    "IT": (39, ("3",), 10, 0.04),
    "US": (1, ("212", "310", "415", "646", "305", "617", "702", "312", "713", "404"), 10, 0.04),
    "MA": (212, ("6", "7"), 9, 0.04),
    "SN": (221, ("70", "76", "77", "78"), 9, 0.03),
    "BR": (55, ("119", "219", "319", "419", "519", "619", "719", "819"), 11, 0.03),
    "RU": (7, ("9",), 10, 0.04),
    "SA": (966, ("5",), 9, 0.04),
}

_UTC = UTC
_D = Decimal
#: Per-part rate of an inbound SMS, in cents of the account currency, by sender country:
#: ``(effective from, rate)`` pairs in time order. One price change: France on 2025-04-01.
RATE_CARD: dict[str, tuple[tuple[datetime, Decimal], ...]] = {
    region: ((datetime(2000, 1, 1, tzinfo=_UTC), _D(rate)),)
    for region, rate in {
        "BE": "1.0500",
        "DE": "1.1750",
        "GB": "1.2500",
        "ES": "0.9800",
        "IT": "1.0350",
        "US": "0.7500",
        "BR": "1.6500",
        "MA": "2.2400",
        "SN": "2.4500",
        "RU": "2.9000",
        "SA": "3.1250",
    }.items()
}
RATE_CARD["FR"] = (
    (datetime(2000, 1, 1, tzinfo=_UTC), _D("0.8925")),
    (datetime(2025, 4, 1, tzinfo=_UTC), _D("0.9450")),
)

#: Kinds of records :func:`write_sample` writes that a loader must reject.
REJECT_KINDS: tuple[str, ...] = (
    "invalid_json",  # truncated JSON
    "invalid_utf8",  # a line that is not UTF-8 (Latin-1 accents)
    "not_an_object",  # a JSON array element that is not an object
    "other_event_type",  # webhook envelope of another type (v2.call.ended)
    "missing_sid",
    "missing_sender",
    "bad_timestamp",  # "created": "yesterday"
    "bad_parts",  # "parts": "two"
    "no_json",  # an "SMS received" log line whose JSON is missing
    "non_sms_log",  # Actions log lines about something else (calls, replies, ...)
)

_START = datetime(2025, 1, 1, tzinfo=_UTC)
_END = datetime(2025, 7, 1, tzinfo=_UTC)
_DAYS = (_END - _START).days
_CEST = timezone(timedelta(hours=2))
_SID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_TYPE_NAMES = {v: k for k, v in vars(PhoneNumberType).items() if k.isupper()}
_SMS_EVENT = "v2.sms.inbound.received"

# --------------------------------------------------------------------------------------
# Segment counting (GSM 03.38 / UCS-2), private on purpose: the package's own counter lives
# elsewhere and the sample must not depend on it.
# --------------------------------------------------------------------------------------

_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXT = frozenset("\f^{}\\[~]|€")


def _segments(text: str) -> tuple[str, int, bool]:
    """Return ``(encoding, parts, clean)`` for `text`.

    ``clean`` is false when splitting rules could disagree: a two-unit character (GSM escape
    pair, UTF-16 surrogate pair) would straddle a segment boundary, so a counter that keeps
    it whole needs more parts than the plain division.
    """
    if all(c in _GSM_BASIC or c in _GSM_EXT for c in text):
        units = [2 if c in _GSM_EXT else 1 for c in text]
        single, multi, encoding = 160, 153, "gsm"
    else:
        units = [2 if ord(c) > 0xFFFF else 1 for c in text]
        single, multi, encoding = 70, 67, "unicode"
    total = sum(units)
    if total <= single:
        return encoding, 1, True
    parts = math.ceil(total / multi)
    packed, used = 1, 0
    for u in units:
        if used + u > multi:
            packed, used = packed + 1, 0
        used += u
    return encoding, parts, packed == parts


# --------------------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------------------

_BANK: dict[str, tuple[str, ...]] = {
    "fr": (
        "Oui",
        "OUI",
        "oui",
        "Non merci",
        "Oui je confirme le rendez-vous de demain",
        "Je confirme ma présence",
        "Merci pour l'info !",
        "C'est noté, merci",
        "Bonjour, est-ce que le magasin est ouvert dimanche ?",
        "Pouvez-vous me rappeler svp",
        "Quel est le code promo ?",
        "Je ne suis pas disponible jeudi, peut-on décaler ?",
        "Bien reçu",
        "D'accord, à demain",
        "Je voudrais annuler ma commande n°{num}",
        "Ma commande n'est toujours pas arrivée",
        "Ok merci beaucoup",
        "Bonjour, je n'ai pas reçu le colis {num}",
        "C'est combien la livraison ?",
        "Super, merci !",
        "Je viens vers {hour}h",
        "Ça marche",
        "Merci ^^",
        "Le prix est bien de {price}€ ?",
        "Vous êtes ouverts à quelle heure ?",
        "Je serai là à {hour}h{min}",
        "Parfait, à bientôt",
        "Est-ce que je peux venir plus tôt ?",
        "Bonjour, c'est pour la réservation de samedi, on sera {few}",
        "Reçu, merci",
        "Ref [{num}] : toujours rien reçu",
        "Code {code}",
        "JEU",
        "CONCOURS",
        "INFO",
    ),
    "en": (
        "Yes",
        "YES",
        "yes please",
        "No thanks",
        "Confirmed, see you tomorrow",
        "Can you call me back?",
        "What time do you close today?",
        "Thanks!",
        "I'd like to reschedule my appointment",
        "Where is my order {num}?",
        "Got it, thanks",
        "Is the offer still valid?",
        "How much is delivery?",
        "I'll be there at {hour}",
        "Sorry, wrong number",
        "Can I come earlier?",
        "Great, thank you",
        "Ok",
        "It's still not delivered",
        "Price is {price}€ right?",
    ),
    "de": (
        "Ja",
        "Nein danke",
        "Bitte rufen Sie mich zurück",
        "Danke für die Info!",
        "Wann haben Sie geöffnet?",
        "Ich komme morgen um {hour} Uhr",
        "Größe {few}2 bitte",
        "Alles klar, danke",
        "Wo bleibt meine Bestellung {num}?",
        "Viele Grüße",
        "Passt, bis morgen",
        "Können wir den Termin verschieben?",
    ),
    "es": (
        "Sí",
        "Si, confirmo",
        "No gracias",
        "¿A qué hora abren?",
        "Gracias!",
        "Llego a las {hour}",
        "¿Cuánto cuesta el envío?",
        "Vale, perfecto",
        "No he recibido el pedido {num}",
        "¿Puedo cambiar la cita?",
        "Muchas gracias",
    ),
    "it": (
        "Sì",
        "Grazie mille",
        "Confermo l'appuntamento",
        "Perché non è arrivato il pacco?",
        "A che ora chiudete?",
        "Può richiamarmi?",
        "Va bene, a domani",
        "No grazie",
        "Arrivo alle {hour}",
        "Ok perfetto",
    ),
    "pt": (
        "Sim",
        "Obrigado!",
        "Não, obrigado",
        "Quanto custa o frete?",
        "Vocês abrem no sábado?",
        "Confirmo",
        "Ainda não recebi o pedido {num}",
        "Pode me ligar?",
        "Valeu!",
    ),
    "nl": (
        "Ja graag",
        "Bedankt!",
        "Nee dank je",
        "Hoe laat gaan jullie open?",
        "Ik kom om {hour} uur",
        "Mijn bestelling {num} is nog niet aangekomen",
        "Prima, tot morgen",
    ),
    "ru": (
        "Да",
        "Нет, спасибо",
        "Спасибо!",
        "Перезвоните мне, пожалуйста",
        "Когда будет доставка?",
        "Подтверждаю",
        "Хорошо, до завтра",
        "Spasibo",
        "Сколько стоит доставка?",
        "Заказ {num} ещё не пришёл",
    ),
    "ar": (
        "نعم",
        "شكرا",
        "متى تفتحون؟",
        "أرجو الاتصال بي",
        "تم، شكرا جزيلا",
        "لم أستلم الطلب {num}",
        "كم سعر التوصيل؟",
        "لا شكرا",
    ),
    "darija": ("Chokran", "Wakha", "Safi chokran bzaf", "Wach kayn livraison l Casa?"),
    "wo": ("Jërëjëf", "Waaw", "Deedeet", "Ba suba"),
    "zh": ("谢谢", "好的，明天见", "请给我回电话", "我的订单{num}还没到"),
    "ja": ("ありがとうございます", "はい、大丈夫です", "明日伺います"),
    "ko": ("네 감사합니다", "내일 뵙겠습니다"),
}
_LONG_FR = (
    "Bonjour, je me permets de vous écrire car ma commande n°{num} n'est toujours pas arrivée "
    "alors que le suivi indique qu'elle a été livrée il y a trois jours.",
    "J'ai déjà appelé le service client deux fois sans réponse.",
    "Pouvez-vous vérifier l'adresse de livraison et me tenir au courant rapidement ?",
    "Sinon je souhaite être remboursé.",
    "Par ailleurs le code promo reçu par SMS ne fonctionne pas sur le site.",
    "Merci d'avance pour votre retour, bonne journée.",
    "Je suis disponible demain entre {hour}h et 18h si vous voulez m'appeler.",
    "Le colis était abîmé et il manquait un article [réf {num}].",
)
_LONG_EN = (
    "Hi, I received your message about the spring sale but the link does not open on my phone.",
    "Could you send me the details again or tell me which store has the offer?",
    "Also my last order {num} arrived damaged and I have not heard back from support yet.",
    "I am available tomorrow after {hour} if someone can call me.",
    "Thanks in advance for your help, have a nice day.",
    "By the way, the price shown online was {price}€ but I was charged more {{see receipt}}.",
)
_OPT = ("STOP", "STOP", "stop", "Stop", "STOP SMS", "Arrêt", "ARRET", "UNSUBSCRIBE", "START")
_EMOJI = ("👍", "😊", "🙏", "❤️", "😂", "🎉", "👌", "😉", "🙂")
_REGION_LANG: dict[str, tuple[tuple[str, float], ...]] = {
    "FR": (("fr", 1.0),),
    "BE": (("fr", 0.6), ("nl", 0.4)),
    "DE": (("de", 1.0),),
    "GB": (("en", 1.0),),
    "US": (("en", 0.85), ("es", 0.15)),
    "ES": (("es", 1.0),),
    "IT": (("it", 1.0),),
    "BR": (("pt", 1.0),),
    "MA": (("fr", 0.6), ("ar", 0.2), ("darija", 0.2)),
    "SN": (("fr", 0.85), ("wo", 0.15)),
    "RU": (("ru", 1.0),),
    "SA": (("ar", 0.8), ("en", 0.2)),
}


def _fill(rng: random.Random, template: str) -> str:
    return template.format(
        num=rng.randrange(10000, 999999),
        hour=rng.randrange(8, 19),
        min=rng.choice(("00", "15", "30", "45")),
        price=rng.choice(("19,90", "25", "49", "12,50", "99")),
        few=rng.randrange(2, 7),
        code=rng.choice(("PROMO25", "SOLDES", "BIENVENUE10", "VIP")),
    )


def _body(rng: random.Random, lang: str, smart: bool, emoji: float, optout: float) -> str:
    """Return one plausible inbound SMS text."""
    if rng.random() < optout:
        return rng.choice(_OPT)
    r = rng.random()
    if r < 0.045 and lang in ("fr", "en"):
        pool = _LONG_FR if lang == "fr" else _LONG_EN
        text = " ".join(_fill(rng, s) for s in rng.sample(pool, rng.randrange(2, len(pool))))
    elif r < 0.06:
        bank = _BANK[lang]
        text = ". ".join(_fill(rng, rng.choice(bank)) for _ in range(rng.randrange(2, 4)))
    else:
        text = _fill(rng, rng.choice(_BANK[lang]))
    if smart:
        text = text.replace("'", "’")
    if rng.random() < emoji:
        text += rng.choice(("", " ")) + rng.choice(_EMOJI) * rng.choice((1, 1, 1, 2, 3))
    return text


def _clean_body(
    rng: random.Random, lang: str, smart: bool, emoji: float, optout: float
) -> tuple[str, str, int]:
    while True:
        text = _body(rng, lang, smart, emoji, optout)
        encoding, parts, clean = _segments(text)
        if clean:
            return text, encoding, parts


# --------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------


_MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


def _pick(rng: random.Random, chars: str, count: int) -> str:
    """Return `count` characters of `chars` drawn as ``rng.choice`` draws each one.

    ``Random.choice`` takes ``getrandbits(len(chars).bit_length())`` until the value is
    below ``len(chars)``; doing the same here saves two Python calls a character (2.4x
    faster per character, about 3 % of the generator's time).
    """
    n = len(chars)
    k = n.bit_length()
    bits = rng.getrandbits
    out = []
    for _ in range(count):
        r = bits(k)
        while r >= n:
            r = bits(k)
        out.append(chars[r])
    return "".join(out)


def _random_mobile(rng: random.Random, region: str) -> tuple[phonenumbers.PhoneNumber, int]:
    """Return a valid mobile number of `region` and its :class:`PhoneNumberType`."""
    cc, prefixes, length, _ = _COUNTRIES[region]
    while True:
        prefix = rng.choice(prefixes)
        digits = prefix + _pick(rng, "0123456789", length - len(prefix))
        if region == "US" and (digits[3] in "01" or digits[3:6] == "555"):
            continue
        num = phonenumbers.PhoneNumber(country_code=cc, national_number=int(digits))
        # number_type is UNKNOWN for an invalid number. Where a calling code is shared,
        # some +44 7 ranges belong to Guernsey, Jersey and Man: keep the asked country.
        kind = phonenumbers.number_type(num)
        if kind in _MOBILE_TYPES and (
            len(phonenumbers.region_codes_for_country_code(cc)) == 1
            or phonenumbers.is_valid_number_for_region(num, region)
        ):
            return num, kind


def _network_for(rng: random.Random, region: str, num: phonenumbers.PhoneNumber) -> str:
    """Return the MCC-MNC a sender uses: mostly the range holder's, sometimes ported.

    `num` is a valid mobile number (:func:`_random_mobile`): what
    ``carrier.name_for_number`` would check again is known.
    """
    name = carrier.name_for_valid_number(num, "en")
    for brand, code in _BRAND_NETWORK.get(region, ()):
        if brand in name and rng.random() < 0.85:
            return code
    return rng.choice(sorted(NETWORKS[region]))


@dataclass(frozen=True)
class _Party:
    number: str
    region: str
    type_name: str
    location: str
    network: str = ""
    lang: str = "fr"
    smart: bool = False
    emoji: float = 0.0


def _party(num: phonenumbers.PhoneNumber, region: str, kind: int, **kw: Any) -> _Party:
    """The party of the valid number `num` of type `kind` (:func:`_random_mobile`)."""
    # What geocoder.description_for_number does, without finding the type a second time.
    code = _COUNTRIES[region][0]  # num's calling code (optional on a PhoneNumber)
    if phonenumbers.is_number_type_geographical(kind, code):
        location = geocoder.description_for_valid_number(num, "en")
    else:
        location = geocoder.country_name_for_number(num, "en")
    return _Party(
        number=f"+{num.country_code}{num.national_number}",
        region=region,
        type_name=_TYPE_NAMES.get(kind, "UNKNOWN"),
        location=location,
        **kw,
    )


def _weighted(rng: random.Random, pairs: tuple[tuple[str, float], ...]) -> str:
    values, cum = _cumulative_pairs(pairs)
    return rng.choices(values, cum_weights=cum)[0]


@functools.cache
def _cumulative_pairs(pairs: tuple[tuple[str, float], ...]) -> tuple[list[str], list[float]]:
    # random.choices adds up the weights on every call; the same sums, made once, draw the
    # same values.
    return [p[0] for p in pairs], _cumulative([p[1] for p in pairs])


def _senders(rng: random.Random, count: int) -> list[_Party]:
    regions = list(_COUNTRIES)
    weights = _cumulative([_COUNTRIES[r][3] for r in regions])
    seen: set[str] = set()
    out: list[_Party] = []
    while len(out) < count:
        region = rng.choices(regions, cum_weights=weights)[0]
        num, kind = _random_mobile(rng, region)
        e164 = f"+{num.country_code}{num.national_number}"
        if e164 in seen:
            continue
        seen.add(e164)
        lang = _weighted(rng, _REGION_LANG[region])
        if rng.random() < 0.01:
            lang = rng.choice(("zh", "ja", "ko"))
        out.append(
            _party(
                num,
                region,
                kind,
                network=_network_for(rng, region, num),
                lang=lang,
                smart=rng.random() < 0.35,
                emoji=rng.choice((0.0, 0.0, 0.05, 0.1, 0.3)),
            )
        )
    return out


def _recipients(rng: random.Random) -> list[tuple[_Party, float, str, float]]:
    """The customer's own numbers: (party, share of traffic, payment type, alerting share)."""
    spec = (
        ("FR", 0.55, "postpaid", 0.05),
        ("FR", 0.2, "postpaid", 0.6),
        ("FR", 0.1, "prepaid", 0.1),
        ("BE", 0.1, "prepaid", 0.05),
        ("GB", 0.05, "prepaid", 0.1),
    )
    out = []
    for region, share, pay, alert in spec:
        num, kind = _random_mobile(rng, region)
        out.append((_party(num, region, kind), share, pay, alert))
    return out


# --------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------


@dataclass
class _Msg:
    sid: str
    sender: _Party
    to: _Party
    text: str
    encoding: str
    parts: int
    cost: Decimal
    traffic: str
    payment: str
    status: str
    error: str
    network: str
    created: datetime
    sent: datetime | None
    delivered: datetime | None
    updated: datetime
    history: list[tuple[str, str, datetime]]
    discrepancy: str = ""
    quirks: set[str] = field(default_factory=set)


def rate_for(region: str, at: datetime) -> Decimal:
    """Return the per-part rate of an SMS from `region` created at `at`.

    Parameters
    ----------
    region : str
        Sender country, ISO 3166-1 alpha-2 (a key of :data:`RATE_CARD`).
    at : datetime.datetime
        When the SMS was created (tz-aware).

    Returns
    -------
    decimal.Decimal
        Rate [cents of the account currency per part].

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> rate_for("FR", datetime(2025, 3, 31, tzinfo=UTC))
    Decimal('0.8925')
    >>> rate_for("FR", datetime(2025, 4, 1, tzinfo=UTC))
    Decimal('0.9450')
    """
    card = RATE_CARD[region]
    i = bisect_right([start for start, _ in card], at) - 1
    return card[max(i, 0)][1]


_CAMPAIGNS = (
    (datetime(2025, 2, 6, 10, 0, tzinfo=_UTC), 0.07),
    (datetime(2025, 3, 20, 16, 30, tzinfo=_UTC), 0.06),
    (datetime(2025, 5, 15, 9, 0, tzinfo=_UTC), 0.07),
)
# Relative traffic by UTC hour (French daytime) and by weekday (Monday first).
_HOURS = (1, 1, 1, 1, 1, 2, 4, 8, 12, 14, 14, 13, 12, 13, 14, 14, 13, 12, 11, 9, 7, 5, 3, 2)
_WEEKDAYS = (1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.55)
_HOURS_CUM = list(itertools.accumulate(_HOURS))


def _created(rng: random.Random) -> tuple[datetime, bool]:
    """Return a creation time and whether it answers a marketing campaign."""
    r = rng.random()
    for start, share in _CAMPAIGNS:
        if r < share:
            return start + timedelta(
                seconds=min(rng.expovariate(1 / 2400), 86400 * 2), milliseconds=rng.randrange(1000)
            ), True
        r -= share
    while True:
        day = rng.randrange(_DAYS - 1)
        date = _START + timedelta(days=day)
        # Slow growth over the half-year, fewer messages at weekends.
        if rng.random() < (0.7 + 0.3 * day / _DAYS) * _WEEKDAYS[date.weekday()]:
            break
    hour = rng.choices(range(24), cum_weights=_HOURS_CUM)[0]
    return date + timedelta(
        hours=hour, seconds=rng.randrange(3600), milliseconds=rng.randrange(1000)
    ), False


_FINAL = (
    ("delivered", 0.95),
    ("sent", 0.012),
    ("failed", 0.012),
    ("error", 0.008),
    ("expired", 0.007),
    ("pending", 0.006),
    ("remote-queued", 0.005),
)
_ERRORS = {
    "failed": ("UNDELIVERABLE", "CARRIER_REJECTED"),
    "error": ("INTERNAL_ERROR",),
    "expired": ("EXPIRED",),
}


def _sid(rng: random.Random, taken: set[str]) -> str:
    while True:
        sid = _pick(rng, _SID_CHARS, 8)
        if sid not in taken:
            taken.add(sid)
            return sid


def _messages(rng: random.Random, n: int, taken: set[str]) -> list[_Msg]:
    senders = _senders(rng, max(40, int(n * 0.45)))
    # Long tail: a handful of frequent senders, many who write once.
    sender_weights = [1 / (i + 6) for i in range(len(senders))]
    recipients = _recipients(rng)
    msgs: list[_Msg] = []
    to_weights = _cumulative([r[1] for r in recipients])
    for sender in rng.choices(senders, sender_weights, k=n):
        created, campaign = _created(rng)
        to, _, payment, alerting = rng.choices(recipients, cum_weights=to_weights)[0]
        text, encoding, parts = _clean_body(
            rng, sender.lang, sender.smart, sender.emoji, 0.12 if campaign else 0.03
        )
        status = _weighted(rng, _FINAL)
        sent = created + timedelta(milliseconds=rng.randrange(50, 2500))
        delivered = sent + timedelta(milliseconds=rng.randrange(100, 6000))
        history = [("sent", status, delivered)]
        if status in ("sent", "pending", "remote-queued", "created"):
            history = [("created", status, sent)]
        if rng.random() < 0.3 and status != "pending":
            history.insert(0, ("created", "sent", sent))
            if status == "sent":
                history.pop()
        msgs.append(
            _Msg(
                sid=_sid(rng, taken),
                sender=sender,
                to=to,
                text=text,
                encoding=encoding,
                parts=parts,
                cost=_D(0),
                traffic="alerting" if rng.random() < alerting else "marketing",
                payment=payment,
                status=status,
                error=rng.choice(_ERRORS.get(status, ("",))),
                network="" if rng.random() < 0.03 else sender.network,
                created=created,
                sent=sent if rng.random() < 0.8 or status == "delivered" else None,
                delivered=delivered if status == "delivered" else None,
                updated=history[-1][2],
                history=history,
            )
        )
    msgs.sort(key=lambda m: m.created)
    _discrepancies(rng, msgs)
    for m in msgs:
        m.cost = m.parts * rate_for(m.sender.region, m.created)
    return msgs


def _discrepancies(rng: random.Random, msgs: list[_Msg]) -> None:
    """Make about 1 % of messages billed differently from what their body needs."""
    kinds = ("parts_plus_one", "unicode_for_gsm", "gsm_for_unicode")
    for j, i in enumerate(rng.sample(range(len(msgs)), max(3, round(len(msgs) * 0.01)))):
        m, kind = msgs[i], kinds[j % 3]
        if kind != "parts_plus_one":
            kind = "unicode_for_gsm" if m.encoding == "gsm" else "gsm_for_unicode"
        if kind == "unicode_for_gsm":
            m.encoding = "unicode"
            units = len(m.text)  # a GSM body is all in the BMP
            m.parts = 1 if units <= 70 else math.ceil(units / 67)
        elif kind == "gsm_for_unicode":
            m.encoding = "gsm"
        else:
            m.parts += 1
        m.discrepancy = kind


# --------------------------------------------------------------------------------------
# Rendering: timestamps, webhook payloads and envelopes, Actions objects
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Style:
    ms: bool = False  # milliseconds in timestamps
    tz: timezone = _UTC  # offset timestamps are written with
    fixed_cost: bool = False  # webhook cost as "2.00"/"1.7850" rather than "2.0"/"1.785"


def _ts(dt: datetime | None, style: _Style) -> str | None:
    if dt is None:
        return None
    local = dt.astimezone(style.tz)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if style.ms:
        text += f".{local.microsecond // 1000:03d}"
    return text + ("Z" if style.tz is _UTC else local.strftime("%z")[:3] + ":00")


def _cost_text(value: Decimal, fixed: bool) -> str:
    if fixed:
        return f"{value:.2f}" if value == value.quantize(_D("0.01")) else f"{value:.4f}"
    text = f"{value.normalize():f}"
    return text if "." in text else text + ".0"


_EXTRA: tuple[dict[str, Any], ...] = (
    {"receivedBy": "webhook-relay/1.4.2"},
    {"tags": ["spring-campaign"], "customerRef": None},
    {"x-archive": {"host": "ingest-02", "batch": 17}},
)


def _payload(m: _Msg, style: _Style, final: bool = True) -> dict[str, Any]:
    """Bare webhook payload of `m` (its final state, or the intermediate ``sent`` one)."""
    status, delivered, updated, history = m.status, m.delivered, m.updated, m.history
    if not final:
        status, delivered, updated = "sent", None, m.sent or m.created
        history = [h for h in history if h[1] == "sent"] or [("created", "sent", updated)]
    d: dict[str, Any] = {
        "direction": "inbound",
        "sid": m.sid,
        "from": m.sender.number,
        "to": m.to.number,
        "body": {"text": m.text},
        "trafficType": m.traffic,
        "status": status,
    }
    if "no_error_key" not in m.quirks:
        d["error"] = m.error if final else ""
    d["encoding"] = m.encoding
    d["parts"] = str(m.parts) if "parts_str" in m.quirks else m.parts
    d["network"] = int(m.network) if "network_int" in m.quirks and m.network else m.network
    d["cost"] = float(m.cost) if "cost_num" in m.quirks else _cost_text(m.cost, style.fixed_cost)
    d["paymentType"] = m.payment
    d["created"] = _ts(m.created, style)
    if m.sent is not None:
        d["sent"] = _ts(m.sent, style)
    d["delivered"] = _ts(delivered, style)
    d["updated"] = _ts(updated, style)
    d["statusHistory"] = [{"after": a, "before": b, "at": _ts(at, style)} for b, a, at in history]
    if "extra" in m.quirks:
        d.update(_EXTRA[len(m.sid) * ord(m.sid[0]) % len(_EXTRA)])
    return d


def _event_id(rng: random.Random, at: datetime) -> str:
    ms = int(at.timestamp() * 1000)
    return f"a033{ms}{rng.randrange(100):02d}" + _pick(rng, _ID_CHARS, 13)


def _envelope(
    event_id: str,
    at: datetime,
    sub: str,
    attempt: int,
    payload: Any,
    kind: str = _SMS_EVENT,
    extra: bool = False,
) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": event_id,
        "at": _ts(at, _Style(ms=True)),
        "sid": sub,
        "type": kind,
        "try": attempt,
        "payload": payload,
    }
    if extra:
        d["archivedAt"] = _ts(at + timedelta(seconds=1), _Style(ms=True))
    return d


def _actions(m: _Msg, style: _Style) -> dict[str, Any]:
    """Callr Actions ``sms`` object of `m`, keys in Callr's order."""
    d: dict[str, Any] = {
        "sid": m.sid,
        "direction": "inbound",
        "fromNumber": m.sender.number,
        "fromType": m.sender.type_name,
        "fromCountry": m.sender.region,
        "fromLocation": m.sender.location,
        "toNumber": m.to.number,
        "toType": m.to.type_name,
        "toCountry": m.to.region,
        "toLocation": m.to.location,
        "status": m.status,
        "encoding": m.encoding,
        "bodyText": m.text,
        "parts": str(m.parts) if "parts_str" in m.quirks else m.parts,
        "billingDebit": (float(m.cost) if "cost_num" in m.quirks else _cost_text(m.cost, True)),
        "billingPaymentType": m.payment,
        "network": int(m.network) if "network_int" in m.quirks and m.network else m.network,
        "deliveredAt": _ts(m.delivered, style),
        "createdAt": _ts(m.created, style),
        "updatedAt": _ts(m.updated, style),
        "sentAt": _ts(m.sent, style),
    }
    if "extra" in m.quirks:
        d["scenario"] = "inbound-sms"
    return d


def _received(m: _Msg) -> str:
    """An Actions log line as Callr's documentation shows it, without a timestamp."""
    return "SMS received " + _compact(_actions(m, _Style(ms=True)))


def _compact(obj: Any) -> str:
    """JSON as ``JSON.stringify`` writes it: no spaces, non-ASCII kept."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------

# What a line file may hold before a record: nothing, an empty line, a line of spaces.
_BLANKS = (b"", b"", b"   ")


@dataclass
class _LineFile:
    """The records one chunk of messages puts in a file of one record per line."""

    path: str
    crlf: bool = False
    bom: bool = False
    lines: list[tuple[float, bytes]] = field(default_factory=list)

    def add(self, at: datetime | float, line: str | bytes) -> None:
        key = at.timestamp() if isinstance(at, datetime) else at
        self.lines.append((key, line.encode() if isinstance(line, str) else line))

    def draw_blanks(self, rng: random.Random) -> tuple[list[tuple[float, int, bytes]], bool]:
        """Sort the lines by time and draw the blank lines among them.

        Returns ``(time, blank, line)`` triples, ``blank`` an index of :data:`_BLANKS` (the
        blank line written before the record), and whether the file ends with an empty line.
        """
        self.lines.sort(key=lambda x: x[0])
        units: list[tuple[float, int, bytes]] = []
        for key, line in self.lines:
            r = rng.random()
            units.append((key, 1 if r < 0.004 else 2 if r < 0.005 else 0, line))
        return units, rng.random() < 0.5


class _Archive:
    """Collects one chunk's records into files and keeps their true counts."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.lines: dict[str, _LineFile] = {}
        self.array: list[Any] = []
        self.events: dict[str, Any] = {}
        self.yaml_docs: list[Any] = []
        self.records = 0
        self.duplicates = 0
        self.rejects: dict[str, int] = {k: 0 for k in REJECT_KINDS}

    def line_file(self, path: str) -> _LineFile:
        if path not in self.lines:
            self.lines[path] = _LineFile(path, crlf=path in _CRLF, bom=path in _BOM)
        return self.lines[path]

    def count(self, kind: str, records: int = 1) -> None:
        """Record what `records` new records are: message, duplicate or a reject kind."""
        self.records += records
        if kind == "duplicate":
            self.duplicates += records
        elif kind != "message":
            self.rejects[kind] += records


# A record of a run: time, blank-line index, length of the line; then the line.
_RUN_HEAD = struct.Struct("<dBI")


class _Runs:
    """Time-sorted runs of lines on disk, merged into the line files at the end.

    Every chunk of messages spans the whole half-year, so each line file receives one
    sorted run per chunk. The runs of a file follow each other in one scratch file and are
    merged, stably, when the file is written: files stay in time order without being held
    in memory.
    """

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.files: dict[str, BinaryIO] = {}
        self.bounds: dict[str, list[tuple[int, int]]] = {}
        self.sizes: dict[str, int] = {}  # bytes of the written file before compression
        self.tails: dict[str, bool] = {}

    def add(self, lf: _LineFile, rng: random.Random) -> None:
        """Append `lf`'s lines as a run, drawing its blank lines from `rng`."""
        units, tail = lf.draw_blanks(rng)
        if lf.path not in self.files:
            self.files[lf.path] = open(self.scratch / f"{len(self.files)}.run", "w+b")  # noqa: SIM115
            self.bounds[lf.path] = []
            self.sizes[lf.path] = len("\ufeff".encode()) if lf.bom else 0
        f = self.files[lf.path]
        eol = len(b"\r\n" if lf.crlf else b"\n")
        data = bytearray()
        size = 0
        for key, blank, line in units:
            data += _RUN_HEAD.pack(key, blank, len(line))
            data += line
            size += len(line) + eol + (len(_BLANKS[blank]) + eol if blank else 0)
        start = f.seek(0, os.SEEK_END)
        f.write(data)
        self.bounds[lf.path].append((start, start + len(data)))
        self.sizes[lf.path] += size
        self.tails[lf.path] = tail

    def write(self, path: str, dest: Path) -> None:
        """Merge the runs of `path` into the file `dest`, compressed as its name says."""
        f = self.files[path]
        f.flush()
        runs = [_iter_run(f.fileno(), start, end) for start, end in self.bounds[path]]
        merged = heapq.merge(*runs, key=_first) if len(runs) > 1 else runs[0]
        crlf, bom = path in _CRLF, path in _BOM
        eol = b"\r\n" if crlf else b"\n"
        tail = self.tails[path]
        with _open_output(dest, self.sizes[path] + (len(eol) if tail else 0)) as out:
            out.write("\ufeff".encode() if bom else b"")
            pending: list[bytes] = []
            for _, blank, line in merged:
                if blank:
                    pending.append(_BLANKS[blank])
                pending.append(line)
                if len(pending) >= 4096:
                    out.write(eol.join(pending) + eol)
                    pending.clear()
            if tail:
                pending.append(b"")
            out.write(eol.join(pending) + eol if pending else b"")
        f.close()
        del self.files[path]


def _first(unit: tuple[float, int, bytes]) -> float:
    return unit[0]


def _iter_run(fd: int, start: int, end: int) -> Iterator[tuple[float, int, bytes]]:
    """Yield the ``(time, blank, line)`` records stored in bytes `start`..`end` of `fd`."""
    head = _RUN_HEAD.size
    unpack = _RUN_HEAD.unpack_from
    buf, i, pos = b"", 0, start

    def more(need: int) -> None:
        nonlocal buf, i, pos
        while len(buf) - i < need:
            data = os.pread(fd, min(max(1 << 16, need), end - pos), pos)
            if not data:
                raise EOFError(f"run cut short at byte {pos}")
            pos += len(data)
            buf, i = buf[i:] + data, 0

    while i < len(buf) or pos < end:
        more(head)
        key, blank, length = unpack(buf, i)
        more(head + length)
        yield key, blank, buf[i + head : i + head + length]
        i += head + length


class _Writer(Protocol):
    """What :func:`_open_output` gives: a binary file, a gzip file or a zstd stream."""

    def write(self, data: bytes, /) -> int: ...


@contextlib.contextmanager
def _open_output(path: Path, size: int) -> Iterator[_Writer]:
    """Open `path` to write `size` bytes, through gzip or zstd if its name ends so.

    gzip gets ``mtime=0`` and no file name, zstd the content size in the frame header: the
    same data gives the same bytes however it is cut into writes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as f:
        if path.name.endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
                yield gz
        elif path.name.endswith(".zst"):
            cctx = zstandard.ZstdCompressor(level=10)
            with cctx.stream_writer(f, size=size, closefd=False) as zst:
                yield zst
        else:
            yield f

# --------------------------------------------------------------------------------------
# The sample
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleManifest:
    """What :func:`write_sample` wrote, with the true counts known by construction.

    A *record* is what a loader reads as one record candidate: in line files (``.jsonl``,
    ``.ndjson``, ``.log``, ``.txt``, compressed or not) every non-blank line (a line of only
    whitespace is blank); in a ``.json`` file each element of a top-level array, or the single
    top-level object; in a ``.yaml`` file each document, or each item of a document that is
    a list. Then ``records == messages + duplicates + rejects``.

    Parameters
    ----------
    root : pathlib.Path
        The archive folder.
    files : tuple of pathlib.Path
        Every file written, sorted.
    seed : int
        The seed the archive was made with.
    messages : int
        Distinct SMS (distinct ``sid``) a correct loader puts in the table.
    records : int
        Record candidates in all files, broken ones included.
    duplicates : int
        Valid records that are extra copies of an ``sid`` already counted: webhook retries
        (same event ``id``, ``try`` 1 or 2; some carry a later ``updated`` and the final
        status, which must win) and messages archived in two files.
    rejects : int
        Records a correct loader must reject: broken ones and non-SMS log lines.
    reject_kinds : dict of str to int
        ``rejects`` by kind (:data:`REJECT_KINDS`); every kind occurs at least once.
    discrepancies : tuple of str
        The ``sid`` of each message whose billed ``encoding`` or ``parts`` disagrees with
        its body (about 1 %).
    senders : int
        Distinct sender numbers among the messages.
    """

    root: Path
    files: tuple[Path, ...]
    seed: int
    messages: int
    records: int
    duplicates: int
    rejects: int
    reject_kinds: dict[str, int]
    discrepancies: tuple[str, ...]
    senders: int

    def to_dict(self) -> dict[str, Any]:
        """Return the manifest as JSON-ready data, file paths relative to ``root``."""
        return {
            "root": str(self.root),
            "files": [p.relative_to(self.root).as_posix() for p in self.files],
            "seed": self.seed,
            "messages": self.messages,
            "records": self.records,
            "duplicates": self.duplicates,
            "rejects": self.rejects,
            "reject_kinds": dict(self.reject_kinds),
            "discrepancies": list(self.discrepancies),
            "senders": self.senders,
        }


def write_manifest(manifest: SampleManifest, path: str | Path) -> Path:
    """Write `manifest` as JSON to `path` and return the path.

    Keep it outside the archive folder: a loader walking the folder would read it as input.
    """
    path = Path(path)
    path.write_text(json.dumps(manifest.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path


# Where messages go (container -> share of messages); the rest go to the monthly files.
_SHARES = {
    "ndjson": 0.05,
    "array": 0.04,
    "events": 0.012,
    "actions_log": 0.24,
    "actions_txt": 0.03,
    "actions_yaml": 0.02,
    "actions_jsonl": 0.04,
}
_MIN_PER_CONTAINER = 3
_WEBHOOK_FILE = {
    1: "webhooks/2025-01.jsonl",
    2: "webhooks/2025-02.jsonl",
    3: "webhooks/2025-03.jsonl",
    4: "webhooks/2025-04.jsonl",
    5: "webhooks/2025-05.jsonl.gz",
    6: "webhooks/2025-06.jsonl.zst",
}
_LOG_FILE = {m: f"actions/scenario-2025-{m:02d}.log" for m in range(1, 6)}
_LOG_FILE[6] = "actions/scenario-2025-06.log.gz"
_CRLF = frozenset({_WEBHOOK_FILE[2]})
_BOM = frozenset({_WEBHOOK_FILE[3]})
_NDJSON = "webhooks/relay-paris.ndjson"
_ARRAY = "exports/payloads-export.json"
_TXT = "actions/sms-received.txt"
_YAML = "actions/inbound-sms.yaml"
_AJSONL = "actions/sms-objects.jsonl"


#: Messages generated and placed together: a chunk is a complete small archive (its own
#: senders, retries, copies and broken records) and memory stays bounded by its size.
#: Up to this many messages the archive is one chunk.
_CHUNK = 50_000


def write_sample(
    out: str | Path,
    *,
    n: int = 3000,
    seed: int = 0,
    progress: Callable[[int], object] | None = None,
) -> SampleManifest:
    """Write a realistic synthetic Callr inbound-SMS archive to the folder `out`.

    The archive holds every shape (bare webhook payload, webhook envelope with retries,
    Actions ``sms`` object bare and under ``sms:``, Actions log lines with text before the
    JSON) in every container (``.jsonl``, ``.jsonl.gz``, ``.jsonl.zst``, ``.ndjson``, a
    ``.json`` array, a folder of pretty-printed ``.json`` events, ``.log``, ``.log.gz``,
    multi-document ``.yaml``, ``.txt``), with a BOM, CRLF line ends, blank lines, numbers as
    strings and strings as numbers, ``+02:00`` offsets, empty ``network``, unknown fields,
    duplicates and a few dozen broken records per thousand messages (:data:`REJECT_KINDS`).

    Messages are made in chunks of up to 50,000, each a complete small archive with its own
    senders, streamed to the files (line files stay in time order): memory does not grow
    with `n`, and time grows linearly. Files appear in `out` only when all are complete.

    Parameters
    ----------
    out : str or pathlib.Path
        Folder to write; created if missing, and it must be empty.
    n : int, default 3000
        Number of distinct messages (at least 200).
    seed : int, default 0
        Seed of the private random generator: the same seed writes the same bytes.
    progress : callable, optional
        Called with the number of messages just made, after each chunk (for a progress
        bar).

    Returns
    -------
    SampleManifest
        The files written and the true counts (see :class:`SampleManifest` for what a
        record is).

    Raises
    ------
    ArgumentError
        If `n` is below 200 (a :class:`ValueError`).
    FileExistsError
        If `out` exists and is not an empty folder (checked again when the finished
        archive is moved there).

    Examples
    --------
    >>> import tempfile
    >>> m = write_sample(tempfile.mkdtemp(), n=300, seed=1)
    >>> m.messages, m.records == m.messages + m.duplicates + m.rejects
    (300, True)
    """
    if n < 200:
        raise ArgumentError("n", n, "a sample needs at least 200 messages")
    root = Path(out)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} exists and is not an empty folder")
    made = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    # Built in a hidden folder inside `out` and moved up when complete: an interrupted run
    # leaves `out` as it found it, and of two runs on one folder the second fails instead
    # of mixing files. (Inside, not beside: `out` may be "." or a link to a folder.)
    stage = Path(tempfile.mkdtemp(prefix=".partial-", dir=root))
    try:
        files, counts = _write_chunks(stage, n, seed, progress)
        _move_up(stage, root)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if made:
            with contextlib.suppress(OSError):  # not ours to remove once another run wrote
                root.rmdir()
        raise
    stage.rmdir()
    return SampleManifest(
        root=root,
        files=tuple(sorted(root / rel for rel in files)),
        seed=seed,
        messages=n,
        **counts,
    )


def _move_up(stage: Path, root: Path) -> None:
    """Move the entries of `stage` into `root`, which must hold nothing but `stage`."""
    if [p.name for p in root.iterdir()] != [stage.name]:
        raise FileExistsError(f"{root} exists and is not an empty folder")
    moved: list[Path] = []
    for entry in sorted(stage.iterdir()):
        try:
            os.rename(entry, root / entry.name)  # refuses a folder another run filled
        except OSError as exc:
            for path in moved:  # ours: take them back out rather than leave half a sample
                shutil.rmtree(path, ignore_errors=True)
            raise FileExistsError(f"{root} exists and is not an empty folder") from exc
        moved.append(root / entry.name)


def _chunk_sizes(n: int) -> list[int]:
    """Split `n` messages into near-equal chunks of at most :data:`_CHUNK`."""
    k = -(-n // _CHUNK)
    return [n // k + (i < n % k) for i in range(k)]


def _write_chunks(
    stage: Path, n: int, seed: int, progress: Callable[[int], object] | None
) -> tuple[list[str], dict[str, Any]]:
    """Write the archive of `n` messages into the empty folder `stage`.

    Returns the files written (relative paths) and the manifest's counts.
    """
    rng = random.Random(seed)
    scratch = stage / ".runs"
    scratch.mkdir()
    runs = _Runs(scratch)
    book = _SidBook()
    files: list[str] = [_ARRAY, _YAML]
    (stage / _ARRAY).parent.mkdir(parents=True)
    (stage / _YAML).parent.mkdir(parents=True)
    records = duplicates = 0
    rejects = dict.fromkeys(REJECT_KINDS, 0)
    discrepancies: list[str] = []
    senders: list[Any] = []
    rounds = 0
    sizes = _chunk_sizes(n)
    with open(stage / _ARRAY, "xb") as array, open(stage / _YAML, "xb") as docs:
        array.write(b"[\n")
        docs.write(b"# Callr Actions: sms objects copied from the scenario logs\n")
        for k, size in enumerate(sizes):
            # Sids are unique within a chunk by construction; across chunks by the book.
            taken: set[str] = set()
            msgs = _messages(rng, size, taken)
            clashed = book.clashes(msgs)
            while clashed:
                for m in clashed:
                    m.sid = _sid(rng, taken)
                clashed = book.clashes(clashed)
            book.add(msgs)
            arc = _Archive(rng)
            _place(rng, arc, msgs)
            reps = max(1, size // 1000)
            _broken(rng, arc, taken, reps, first=rounds, last=k == len(sizes) - 1)
            rounds += reps

            for _, lf in sorted(arc.lines.items()):
                runs.add(lf, rng)
            text = json.dumps(arc.array, ensure_ascii=False, indent=1)
            array.write((",\n" if k else "").encode() + text[2:-2].encode())
            for rel, obj in sorted(arc.events.items()):
                (stage / rel).parent.mkdir(exist_ok=True)
                text = json.dumps(obj, ensure_ascii=False, indent=2) + "\n"
                with open(stage / rel, "xb") as f:
                    f.write(text.encode())
                files.append(rel)
            for d in arc.yaml_docs:
                docs.write(b"---\n" + _yaml_doc(d).encode())

            records += arc.records
            duplicates += arc.duplicates
            for kind, count in arc.rejects.items():
                rejects[kind] += count
            discrepancies += (m.sid for m in msgs if m.discrepancy)
            senders.append(_number_codes({m.sender.number for m in msgs}))
            del msgs, arc
            if progress is not None:
                progress(size)
        array.write(b"\n]\n")
    for rel in sorted(runs.files):
        runs.write(rel, stage / rel)
        files.append(rel)
    shutil.rmtree(scratch)
    import numpy as np

    return files, {
        "records": records,
        "duplicates": duplicates,
        "rejects": sum(rejects.values()),
        "reject_kinds": rejects,
        "discrepancies": tuple(sorted(discrepancies)),
        "senders": len(np.unique(np.concatenate(senders))),
    }


def _yaml_doc(doc: Any) -> str:
    # Not libyaml's faster CSafeDumper: it escapes emoji ("\U0001F642") even with
    # allow_unicode, and the shipped sample keeps them as they are.
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=1000)


def _number_codes(numbers: set[str]) -> Any:
    """E.164 numbers as a NumPy array of integers (compact, for counting distinct ones)."""
    import numpy as np

    return np.fromiter((int(x[1:]) for x in numbers), dtype=np.int64, count=len(numbers))


class _SidBook:
    """Every message sid handed out so far, as sorted integers: 8 bytes a sid.

    Each chunk draws its sids without repeats; the book finds the rare clash with an
    earlier chunk (about one in 10 million per pair at 10 million messages).
    """

    def __init__(self) -> None:
        import numpy as np

        self.codes = np.empty(0, dtype=np.int64)

    def _codes(self, msgs: list[_Msg]) -> Any:
        import numpy as np

        return np.fromiter((int(m.sid, 36) for m in msgs), dtype=np.int64, count=len(msgs))

    def clashes(self, msgs: list[_Msg]) -> list[_Msg]:
        """Return the messages of `msgs` whose sid an earlier chunk already used."""
        import numpy as np

        if not len(self.codes):
            return []
        codes = self._codes(msgs)
        at = np.minimum(np.searchsorted(self.codes, codes), len(self.codes) - 1)
        return [msgs[i] for i in np.flatnonzero(self.codes[at] == codes)]

    def add(self, msgs: list[_Msg]) -> None:
        import numpy as np

        codes = np.sort(self._codes(msgs))
        self.codes = np.insert(self.codes, np.searchsorted(self.codes, codes), codes)


def _place(rng: random.Random, arc: _Archive, msgs: list[_Msg]) -> None:
    """Put every message in a container, with retries and cross-file copies."""
    order = list(range(len(msgs)))
    rng.shuffle(order)
    where: dict[int, str] = {}
    pos = 0
    for container, share in _SHARES.items():
        k = max(_MIN_PER_CONTAINER, round(share * len(msgs)))
        if container == "events":
            k = min(k, 40)
        for i in order[pos : pos + k]:
            if container == "ndjson" and msgs[i].created.month < 4:
                where[i] = "webhook"  # the +02:00 relay only ran in summer time
            else:
                where[i] = container
        pos += k
    for i in order[pos:]:
        where[i] = "webhook"

    # Nasty-but-valid details, each on a few messages, and each in every container.
    quirks = ("parts_str", "cost_num", "network_int", "extra", "no_error_key")
    for quirk in quirks:
        for m in rng.sample(msgs, max(3, len(msgs) // 150)):
            m.quirks.add(quirk)
    for container in [*_SHARES, "webhook"]:
        mine = [msgs[i] for i in sorted(where) if where[i] == container]
        for quirk, m in zip(quirks, mine, strict=False):
            m.quirks.add(quirk)
    for m in msgs:
        if not m.network:
            m.quirks.discard("network_int")

    subs = ("pdszbxss", "kq7rmw2d")
    for i, m in enumerate(msgs):
        c = where[i]
        if c == "webhook":
            _place_webhook(rng, arc, m, subs)
        elif c == "ndjson":
            lf = arc.line_file(_NDJSON)
            lf.add(m.updated, _compact(_payload(m, _Style(ms=True, tz=_CEST))))
            arc.count("message")
        elif c == "array":
            arc.array.append(_payload(m, _Style()))
            arc.count("message")
        elif c == "events":
            at = m.updated + timedelta(milliseconds=rng.randrange(200, 2000))
            eid = _event_id(rng, at)
            arc.events[f"events/evt_{eid}.json"] = _envelope(
                eid, at, subs[0], 0, _payload(m, _Style())
            )
            arc.count("message")
            if len(arc.events) == 3:  # one event delivered twice
                at2 = at + timedelta(seconds=60)
                arc.events[f"events/evt_{eid}_try1.json"] = _envelope(
                    eid, at2, subs[0], 1, _payload(m, _Style())
                )
                arc.count("duplicate")
        elif c == "actions_log":
            _place_log(rng, arc, m)
        elif c == "actions_txt":
            arc.line_file(_TXT).add(m.updated, _received(m))
            arc.count("message")
        elif c == "actions_yaml":
            arc.yaml_docs.append({"sms": _actions(m, _Style(ms=True))})
            arc.count("message")
        else:
            obj = _actions(m, _Style(ms=rng.random() < 0.5))
            arc.line_file(_AJSONL).add(
                m.updated, _compact(obj if rng.random() < 0.5 else {"sms": obj})
            )
            arc.count("message")

    # One YAML document that is a list of two objects (two records).
    if len(arc.yaml_docs) >= 4:
        a, b = arc.yaml_docs.pop(), arc.yaml_docs.pop()
        arc.yaml_docs.append([b, a])

    # A few messages archived twice, in another file of the same family.
    dup_k = max(3, len(msgs) // 150)
    for i in rng.sample(range(len(msgs)), dup_k):
        m, c = msgs[i], where[i]
        if c in ("webhook", "events", "ndjson"):
            arc.array.append(_payload(m, _Style()))
        elif c == "array":
            arc.line_file(_NDJSON).add(m.updated, _compact(_payload(m, _Style(True, _CEST))))
        elif c == "actions_yaml":
            arc.line_file(_TXT).add(m.updated, _received(m))
        else:
            arc.yaml_docs.append({"sms": _actions(m, _Style(ms=True))})
        arc.count("duplicate")


def _place_webhook(rng: random.Random, arc: _Archive, m: _Msg, subs: tuple[str, str]) -> None:
    month = m.created.month
    lf = arc.line_file(_WEBHOOK_FILE[month])
    style = _Style(ms=month in (3, 6), fixed_cost=month >= 4)
    sub = subs[0] if m.to.region == "FR" else subs[1]
    if rng.random() < 0.15:
        lf.add(m.updated, _compact(_payload(m, style)))
        arc.count("message")
        return
    at = m.updated + timedelta(milliseconds=rng.randrange(150, 2500))
    eid = _event_id(rng, at)
    r = rng.random()
    if r < 0.015 and m.status == "delivered" and m.sent is not None:
        # First delivery carried the intermediate state; the retry the final one.
        first = m.sent + timedelta(milliseconds=rng.randrange(100, 900))
        eid = _event_id(rng, first)
        lf.add(first, _compact(_envelope(eid, first, sub, 0, _payload(m, style, final=False))))
        lf.add(
            at + timedelta(seconds=30),
            _compact(_envelope(eid, at + timedelta(seconds=30), sub, 1, _payload(m, style))),
        )
        arc.count("message")
        arc.count("duplicate")
        return
    lf.add(at, _compact(_envelope(eid, at, sub, 0, _payload(m, style), extra="extra" in m.quirks)))
    arc.count("message")
    retries = 0 if r > 0.06 else (1 if r > 0.02 else 2)
    for attempt in range(1, retries + 1):
        later = at + timedelta(seconds=30 * 4**attempt, milliseconds=rng.randrange(1000))
        lf.add(later, _compact(_envelope(eid, later, sub, attempt, _payload(m, style))))
        arc.count("duplicate")


def _place_log(rng: random.Random, arc: _Archive, m: _Msg) -> None:
    lf = arc.line_file(_LOG_FILE[m.created.month])
    logged = m.updated + timedelta(milliseconds=rng.randrange(5, 400))
    style = _Style(ms=True)
    prefix = f"{_ts(logged, _Style(ms=m.created.month % 2 == 0))} log@v1 SMS received "
    lf.add(logged, prefix + _compact(_actions(m, style)))
    arc.count("message")
    if rng.random() < 0.04:
        # The scenario replies, and says so: a log line that is not an inbound SMS.
        later = logged + timedelta(seconds=rng.randrange(1, 5))
        lf.add(later, f"{_ts(later, _Style())} sms@v1 reply sent to {m.sender.number}")
        arc.count("non_sms_log")
    if rng.random() < 0.02:
        later = logged + timedelta(minutes=rng.randrange(5, 90))
        call = {
            "callId": _pick(rng, _SID_CHARS, 10),
            "duration": rng.randrange(5, 600),
        }
        text = rng.choice(("log@v1 call ended", "log@v1 call ended " + _compact(call)))
        lf.add(later, f"{_ts(later, _Style())} {text}")
        arc.count("non_sms_log")


def _broken(
    rng: random.Random, arc: _Archive, taken: set[str], reps: int, *, first: int, last: bool
) -> None:
    """Add `reps` rounds of broken records, each kind at least once a round.

    `first` numbers the rounds across chunks; the `last` chunk ends the scenario's log.
    """
    for r in range(first, first + reps):
        _broken_round(rng, arc, taken, r)
    if last:
        # At least one non-SMS log line whatever the draw.
        at = datetime(2025, 6, 30, 23, 59, 58, tzinfo=_UTC)
        line = f"{_ts(at, _Style())} log@v1 scenario inbound-sms stopped"
        arc.line_file(_LOG_FILE[6]).add(at, line)
        arc.count("non_sms_log")


def _round_shift(r: int) -> timedelta:
    """How far round `r`'s dated records move: a day per round for 20 rounds, then minutes
    (within a day), so that any number of rounds stays in the month it starts in."""
    return timedelta(days=r % 20, minutes=r // 20 % 1440)


def _broken_round(rng: random.Random, arc: _Archive, taken: set[str], r: int) -> None:
    """Add one broken record of each kind, made of messages that exist nowhere else."""
    msgs = _messages(rng, 24, taken)  # throwaway messages the broken records are made of
    it = iter(msgs)
    plain = _Style()

    def month_file(m: _Msg) -> _LineFile:
        return arc.line_file(_WEBHOOK_FILE[m.created.month])

    def env(m: _Msg, payload: Any, kind: str = _SMS_EVENT) -> str:
        at = m.updated + timedelta(seconds=1)
        return _compact(_envelope(_event_id(rng, at), at, "pdszbxss", 0, payload, kind))

    # Truncated JSON: a webhook line, a relay line, an Actions log line.
    m = next(it)
    line = env(m, _payload(m, plain))
    month_file(m).add(m.updated, line[: len(line) * 2 // 3])
    m = next(it)
    line = _compact(_payload(m, _Style(True, _CEST)))
    arc.line_file(_NDJSON).add(m.updated, line[: len(line) // 2])
    m = next(it)
    line = f"{_ts(m.updated, plain)} log@v1 SMS received {_compact(_actions(m, plain))}"
    arc.line_file(_LOG_FILE[m.created.month]).add(m.updated, line[:120])
    arc.count("invalid_json", 3)

    # Latin-1 bytes in an otherwise fine line.
    for target in ("webhook", "log"):
        m = next(it)
        m.text = f"Réservation confirmée pour {rng.randrange(2, 6)} personnes"
        if target == "webhook":
            raw = _compact(_payload(m, plain)).encode()
            arc.line_file(_WEBHOOK_FILE[4]).add(m.updated, raw.replace("é".encode(), b"\xe9"))
        else:
            raw = (
                f"{_ts(m.updated, plain)} log@v1 SMS received " + _compact(_actions(m, plain))
            ).encode()
            arc.line_file(_LOG_FILE[2]).add(m.updated, raw.replace("é".encode(), b"\xe9"))
        arc.count("invalid_utf8")

    # Array elements that are not objects.
    for value in (None, "n/a", [1, 2]):
        arc.array.insert(rng.randrange(len(arc.array) + 1), value)
        arc.count("not_an_object")

    # Envelopes of another event type, in line files and as an event file.
    for month in (1, 4):
        at = datetime(2025, month, 9, 14, 3, 7, 250000, tzinfo=_UTC) + _round_shift(r)
        call = {
            "callid": _pick(rng, _SID_CHARS, 8),
            "from": "+33612345678",
            "duration": 73,
            "status": "ended",
        }
        arc.line_file(_WEBHOOK_FILE[month]).add(
            at, _compact(_envelope(_event_id(rng, at), at, "pdszbxss", 0, call, "v2.call.ended"))
        )
        arc.count("other_event_type")
    at = datetime(2025, 3, 2, 11, 0, 0, tzinfo=_UTC) + _round_shift(r)
    eid = _event_id(rng, at)
    arc.events[f"events/evt_{eid}.json"] = _envelope(
        eid, at, "pdszbxss", 0, {"callid": "w2k9xq1z", "duration": 12}, "v2.call.ended"
    )
    arc.count("other_event_type")

    # Missing sid, missing sender: webhook and Actions shapes.
    m = next(it)
    p = _payload(m, plain)
    del p["sid"]
    month_file(m).add(m.updated, env(m, p))
    m = next(it)
    a = _actions(m, plain)
    del a["sid"]
    arc.line_file(_LOG_FILE[m.created.month]).add(
        m.updated, f"{_ts(m.updated, plain)} log@v1 SMS received {_compact(a)}"
    )
    arc.count("missing_sid", 2)
    m = next(it)
    p = _payload(m, plain)
    del p["from"]
    month_file(m).add(m.updated, _compact(p))
    m = next(it)
    a = _actions(m, _Style(ms=True))
    a["fromNumber"] = None
    arc.yaml_docs.insert(rng.randrange(len(arc.yaml_docs) + 1), {"sms": a})
    arc.count("missing_sender", 2)

    # Unreadable values.
    m = next(it)
    p = _payload(m, plain)
    p["created"] = "yesterday"
    month_file(m).add(m.updated, _compact(p))
    m = next(it)
    a = _actions(m, plain)
    a["createdAt"] = "yesterday"
    arc.line_file(_AJSONL).add(m.updated, _compact(a))
    arc.count("bad_timestamp", 2)
    m = next(it)
    p = _payload(m, plain)
    p["parts"] = "two"
    month_file(m).add(m.updated, env(m, p))
    m = next(it)
    a = _actions(m, plain)
    a["parts"] = "two"
    arc.line_file(_TXT).add(m.updated, "SMS received " + _compact(a))
    arc.count("bad_parts", 2)

    # "SMS received" with the JSON cut off by the logger.
    for _ in range(2):
        m = next(it)
        arc.line_file(_LOG_FILE[m.created.month]).add(
            m.updated, f"{_ts(m.updated, plain)} log@v1 SMS received"
        )
        arc.count("no_json")


# --------------------------------------------------------------------------------------
# Benchmark file
# --------------------------------------------------------------------------------------

_FAST_LINE = (
    '{"direction":"inbound","sid":"%s","from":"%s","to":"%s","body":{"text":%s},'
    '"trafficType":"%s","status":"delivered","encoding":"%s","parts":%d,"network":"%s",'
    '"cost":"%s","paymentType":"%s","created":"%s","delivered":"%s","updated":"%s",'
    '"statusHistory":[{"after":"delivered","before":"sent","at":"%s"}]}\n'
)


def write_webhook_jsonl(path: str | Path, *, n: int, senders: int = 50_000, seed: int = 0) -> int:
    """Write `n` bare webhook payloads as JSON Lines, fast, for benchmarks.

    Every payload has a distinct 8-character ``sid``, a valid sender number drawn long-tailed
    from `senders` distinct ones with a matching ``network``, a realistic body with
    consistent ``encoding``, ``parts`` and ``cost``, and times in 2025-01-01 .. 2025-06-30
    UTC. About 450 bytes a line: 1,000,000 lines make about 450 MB.

    Parameters
    ----------
    path : str or pathlib.Path
        File to write (overwritten).
    n : int
        Number of payloads (lines).
    senders : int, default 50000
        Number of distinct sender numbers to draw from.
    seed : int, default 0
        Seed of the private random generator: the same seed writes the same bytes.

    Returns
    -------
    int
        Bytes written.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "bench.jsonl")
    >>> write_webhook_jsonl(p, n=1000, senders=200) == os.path.getsize(p)
    True
    """
    rng = random.Random(seed)
    pool = _fast_senders(rng, max(1, senders))
    weights = _cumulative([1 / (i + 6) for i in range(len(pool))])
    bodies: dict[str, list[tuple[str, str, int]]] = {}
    for lang in _BANK:
        bodies[lang] = []
        for _ in range(512):
            text, encoding, parts = _clean_body(
                rng, lang, rng.random() < 0.35, rng.choice((0.0, 0.1, 0.3)), 0.03
            )
            bodies[lang].append((json.dumps(text, ensure_ascii=False), encoding, parts))
    # Sender's texts in the sender's language (a sender keeps one language).
    sender_bodies = [bodies[_weighted(rng, _REGION_LANG[region])] for _, region, _ in pool]
    recipients = _recipients(rng)
    to_picks = rng.choices([r[0].number for r in recipients], [r[1] for r in recipients], k=n)
    payments = {r[0].number: r[2] for r in recipients}
    days = [(_START + timedelta(days=d)).strftime("%Y-%m-%dT") for d in range(_DAYS - 1)]
    hms = [f"{h:02d}:{m:02d}:{s:02d}Z" for h in range(24) for m in range(60) for s in range(60)]
    # Seconds of the day drawn once from the daily profile, then reused.
    second_of_day = [
        h * 3600 + rng.randrange(3600) for h in rng.choices(range(24), _HOURS, k=20_000)
    ]
    change = int((datetime(2025, 4, 1, tzinfo=_UTC) - _START).total_seconds())
    costs: dict[tuple[str, int, bool], str] = {}
    # An affine bijection of 0 .. 36**8 - 1 (the multiplier is prime to 2 and 3), then each
    # base-1296 digit through its own shuffled table: distinct, random-looking sids
    # without remembering them.
    modulus, mult, offset = 36**8, 1_743_558_068_497, rng.randrange(36**8)
    pairs = [a + b for a in _SID_CHARS for b in _SID_CHARS]
    p0, p1, p2, p3 = (rng.sample(pairs, len(pairs)) for _ in range(4))
    random_ = rng.random
    n_days = len(days)

    written = 0
    chunk: list[str] = []
    with open(path, "wb") as f:
        picks = rng.choices(range(len(pool)), cum_weights=weights, k=n)
        for i in range(n):
            hi, lo = divmod((i * mult + offset) % modulus, 1679616)
            sid = p0[hi // 1296] + p1[hi % 1296] + p2[lo // 1296] + p3[lo % 1296]
            k = picks[i]
            number, region, network = pool[k]
            own = sender_bodies[k]
            text, encoding, parts = own[int(random_() * 512)]
            day = int(random_() * n_days)
            sod = second_of_day[int(random_() * 20_000)]
            t = day * 86400 + sod
            key = (region, parts, t >= change)
            cost = costs.get(key)
            if cost is None:
                when = _START + timedelta(seconds=t)
                cost = costs[key] = _cost_text(parts * rate_for(region, when), False)
            created = days[day] + hms[sod]
            later = sod + 1 + int(random_() * 4)
            done = days[day] + hms[later] if later < 86400 else created
            to = to_picks[i]
            chunk.append(
                _FAST_LINE
                % (
                    sid,
                    number,
                    to,
                    text,
                    "alerting" if random_() < 0.12 else "marketing",
                    encoding,
                    parts,
                    network,
                    cost,
                    payments[to],
                    created,
                    done,
                    done,
                    done,
                )
            )
            if len(chunk) == 10_000:
                data = "".join(chunk).encode()
                f.write(data)
                written += len(data)
                chunk.clear()
        data = "".join(chunk).encode()
        f.write(data)
        written += len(data)
    return written


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def _fast_senders(rng: random.Random, count: int) -> list[tuple[str, str, str]]:
    """Distinct valid senders as (E.164, region, network), cheaper than :func:`_senders`.

    The network is any operator of the sender's country: looking up the range holder
    would double the time.
    """
    regions = list(_COUNTRIES)
    weights = [_COUNTRIES[r][3] for r in regions]
    networks = {r: sorted(codes) for r, codes in NETWORKS.items()}
    seen: set[str] = set()
    out: list[tuple[str, str, str]] = []
    while len(out) < count:
        region = rng.choices(regions, weights)[0]
        num, _ = _random_mobile(rng, region)
        e164 = f"+{num.country_code}{num.national_number}"
        if e164 not in seen:
            seen.add(e164)
            out.append((e164, region, rng.choice(networks[region])))
    return out


def _main(argv: list[str] | None = None) -> None:
    """``python -m smsanalytics.sample sample OUT [N SEED]`` or ``... bench FILE [N]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m smsanalytics.sample")
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("sample", help="write a synthetic archive folder")
    p.add_argument("out")
    p.add_argument("-n", type=int, default=3000)
    p.add_argument("--seed", type=int, default=7)
    b = sub.add_parser("bench", help="write bare webhook payloads as JSON Lines, timed")
    b.add_argument("file")
    b.add_argument("-n", type=int, default=1_000_000)
    b.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.what == "sample":
        m = write_sample(args.out, n=args.n, seed=args.seed)
        print(json.dumps({k: v for k, v in m.to_dict().items() if k != "discrepancies"}, indent=2))
    else:
        size = write_webhook_jsonl(args.file, n=args.n, seed=args.seed)
        print(f"{args.n:,} lines, {size:,} bytes in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":  # pragma: no cover
    _main()
