"""Moved: the contact sync is ``shared/contacts.py``, Xero's name-taken refusal is
``shared.xero.rules.XeroNameTaken``. These re-exports stay only while ``shared/wiring.py`` and
``shared/backfill.py`` at HEAD import them from here (their new imports are in flight)."""

from shared.contacts import ContactSync as ContactSync

UNIQUE_NAME_MESSAGE = "is already assigned to another contact"
