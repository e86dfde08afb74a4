"""Qt needs a UTF-8 locale: choose one before Qt starts, instead of letting Qt warn at every start.

With ``LANG=C`` or ``LC_ALL=C`` (servers, containers, cron, some launchers) Qt switches to C.UTF-8 by
itself but prints four lines ("Detected locale "C" with character encoding "ANSI_X3.4-1968", which is
not UTF-8 …") on every start.  ``use_utf8_locale`` makes the same choice quietly: it changes only the
character type (``LC_CTYPE``); messages, numbers, dates and sorting keep the user's settings.  Python run
from source often does this already (PEP 538 locale coercion); the frozen interpreter and ``LC_ALL=C``
do not.  No Qt import here: it must run before Qt loads.
"""

from __future__ import annotations

import locale
import os
import sys
from collections.abc import MutableMapping

UTF8_LOCALES = ("C.UTF-8", "C.utf8", "en_US.UTF-8")
# Every category LC_ALL overrides (glibc's list); LC_CTYPE is the one changed.
CATEGORIES = ("LC_COLLATE", "LC_MONETARY", "LC_NUMERIC", "LC_TIME", "LC_MESSAGES", "LC_PAPER", "LC_NAME",
              "LC_ADDRESS", "LC_TELEPHONE", "LC_MEASUREMENT", "LC_IDENTIFICATION")


def ctype_setting(environ: MutableMapping[str, str]) -> str:
    """The locale name that decides the character type: LC_ALL, else LC_CTYPE, else LANG, else C."""
    for var in ("LC_ALL", "LC_CTYPE", "LANG"):
        if environ.get(var):
            return environ[var]
    return "C"


def is_utf8_locale(name: str) -> bool:
    """Whether ``name`` is an installed locale whose character set is UTF-8."""
    saved = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, name)
        codeset = locale.nl_langinfo(locale.CODESET)
    except locale.Error:
        return False
    finally:
        locale.setlocale(locale.LC_CTYPE, saved)
    return codeset.replace("-", "").upper() == "UTF8"


def use_utf8_locale(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Make the character type UTF-8 if the environment's is not; returns the locale chosen, or None.

    Changes ``environ`` (``os.environ`` by default, which Qt reads when it starts): LC_CTYPE becomes the
    first installed of ``UTF8_LOCALES``; an LC_ALL is replaced by the same value in every other category,
    so nothing but the character type changes.  Nothing happens on Windows (Qt does not check there), when
    the locale is UTF-8 already, or when no UTF-8 locale is installed.
    """
    if sys.platform == "win32":
        return None
    env = os.environ if environ is None else environ
    if is_utf8_locale(ctype_setting(env)):
        return None
    chosen = next((name for name in UTF8_LOCALES if is_utf8_locale(name)), None)
    if chosen is None:
        return None
    everything = env.pop("LC_ALL", "")
    if everything:
        for category in CATEGORIES:
            env[category] = everything
    env["LC_CTYPE"] = chosen
    if environ is None:
        locale.setlocale(locale.LC_CTYPE, "")  # this process too, not only what Qt will read
    return chosen
