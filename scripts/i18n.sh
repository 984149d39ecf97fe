#!/usr/bin/env bash
# The UI's translations (gettext domain "praxis" in ui/locale), with Babel.
#   scripts/i18n.sh extract   ui/**/*.py and ui/templates -> ui/locale/praxis.pot
#   scripts/i18n.sh update    merge the .pot into each language's .po (new languages are created);
#                             English is filled from the msgids; obsolete messages are dropped
#   scripts/i18n.sh compile   .po -> .mo (the .mo files are committed, so installs need no build step)
#   scripts/i18n.sh           all three
# tests/ui/test_i18n.py fails when a message is untranslated or fuzzy in any language, or a .mo is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL="${PYBABEL:-.venv/bin/pybabel}"
PYTHON="${PYTHON:-.venv/bin/python}"
DIR=ui/locale
POT=$DIR/praxis.pot
DOMAIN=praxis
LOCALES="en ko ru zh_Hans hu"
KEYWORDS=(-k _ -k gettext -k ngettext:1,2 -k pgettext:1c,2 -k npgettext:1c,2,3 -k N_)

extract() {
  "$PYBABEL" -q extract -F ui/babel.cfg "${KEYWORDS[@]}" --no-wrap --sort-by-file \
    --project=Praxis --copyright-holder="Praxis contributors" --msgid-bugs-address="" -o "$POT" ui
}

update() {
  for locale in $LOCALES; do
    po="$DIR/$locale/LC_MESSAGES/$DOMAIN.po"
    if [ -f "$po" ]; then
      "$PYBABEL" -q update -i "$POT" -d "$DIR" -D "$DOMAIN" -l "$locale" --no-wrap --no-fuzzy-matching --ignore-obsolete
    else
      "$PYBABEL" -q init -i "$POT" -d "$DIR" -D "$DOMAIN" -l "$locale" --no-wrap
    fi
  done
  # English is the source language: its catalog is the msgids themselves.
  "$PYTHON" - "$DIR/en/LC_MESSAGES/$DOMAIN.po" <<'PY'
import sys
from babel.messages.pofile import read_po, write_po
path = sys.argv[1]
with open(path, "rb") as handle:
    catalog = read_po(handle, locale="en")
for message in catalog:
    if not message.id:
        continue
    message.string = tuple(message.id) if isinstance(message.id, (list, tuple)) else message.id
    message.flags.discard("fuzzy")
with open(path, "wb") as handle:
    write_po(handle, catalog, width=0, sort_by_file=True)
PY
}

compile() {
  "$PYBABEL" -q compile -d "$DIR" -D "$DOMAIN"
}

case "${1:-all}" in
  extract) extract ;;
  update) update ;;
  compile) compile ;;
  all) extract; update; compile ;;
  *) echo "usage: $0 [extract|update|compile|all]" >&2; exit 2 ;;
esac
