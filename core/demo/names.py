"""Realistic names, phones and national IDs for demo patients, in each clinic's local script."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

HU_FAMILY = ["Nagy", "Kovács", "Tóth", "Szabó", "Horváth", "Varga", "Kiss", "Molnár", "Németh", "Farkas",
             "Balogh", "Papp", "Takács", "Juhász", "Lakatos", "Mészáros", "Oláh", "Simon", "Rácz", "Fekete"]
HU_GIVEN_M = ["László", "István", "József", "János", "Zoltán", "Sándor", "Gábor", "Ferenc", "Attila", "Péter"]
HU_GIVEN_F = ["Mária", "Erzsébet", "Katalin", "Éva", "Ilona", "Anna", "Zsuzsanna", "Judit", "Ágnes", "Eszter"]

KR_FAMILY = [("김", "Kim"), ("이", "Lee"), ("박", "Park"), ("최", "Choi"), ("정", "Jung"), ("강", "Kang"),
             ("조", "Cho"), ("윤", "Yoon"), ("장", "Jang"), ("임", "Lim"), ("한", "Han"), ("오", "Oh"),
             ("서", "Seo"), ("신", "Shin"), ("권", "Kwon"), ("황", "Hwang"), ("안", "Ahn"), ("송", "Song")]
KR_GIVEN_M = [("민준", "Minjun"), ("서준", "Seojun"), ("도윤", "Doyun"), ("예준", "Yejun"), ("시우", "Siwoo"),
              ("하준", "Hajun"), ("지호", "Jiho"), ("현우", "Hyunwoo"), ("지훈", "Jihoon"), ("영수", "Youngsoo")]
KR_GIVEN_F = [("서연", "Seoyeon"), ("서윤", "Seoyun"), ("지우", "Jiwoo"), ("하윤", "Hayun"), ("민서", "Minseo"),
              ("지민", "Jimin"), ("수빈", "Subin"), ("영희", "Younghee"), ("정숙", "Jungsook"), ("미경", "Mikyung")]


@dataclass(frozen=True)
class DemoPerson:
    family_name: str
    given_name: str
    family_name_latin: str
    given_name_latin: str
    sex: str
    birth_date: date
    phone: str
    email: str
    national_id: str | None


def taj(rng: random.Random) -> str:
    digits = [rng.randrange(10) for _ in range(8)]
    check = sum(d * (3 if i % 2 == 0 else 7) for i, d in enumerate(digits)) % 10
    return "".join(map(str, digits)) + str(check)


def rrn(rng: random.Random, birth: date, sex: str) -> str:
    # Numbers issued since October 2020 carry random digits after the gender digit (no check digit).
    century_2000 = birth.year >= 2000
    gender = {("M", False): 1, ("F", False): 2, ("M", True): 3, ("F", True): 4}[(sex, century_2000)]
    tail = "".join(str(rng.randrange(10)) for _ in range(6))
    return f"{birth:%y%m%d}-{gender}{tail}"


def _ascii(text: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).lower()


def person(rng: random.Random, country: str) -> DemoPerson:
    sex = rng.choice("MF")
    birth = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 80))
    if country == "KR":
        family, family_latin = rng.choice(KR_FAMILY)
        given, given_latin = rng.choice(KR_GIVEN_M if sex == "M" else KR_GIVEN_F)
        phone = f"+8210{rng.randrange(10_000_000, 99_999_999)}"
        national = rrn(rng, birth, sex)
    else:
        family = family_latin = rng.choice(HU_FAMILY)
        given = given_latin = rng.choice(HU_GIVEN_M if sex == "M" else HU_GIVEN_F)
        phone = f"+3620{rng.randrange(1_000_000, 9_999_999)}"
        national = taj(rng)
    email = f"{_ascii(given_latin)}.{_ascii(family_latin)}{rng.randrange(100)}@example.com"
    return DemoPerson(family, given, family_latin, given_latin, sex, birth, phone, email, national)
