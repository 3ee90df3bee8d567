"""Moved: the contact sync is ``shared/contacts.py``. This re-export stays only while
``shared/wiring.py`` at HEAD imports it from here (its new import is in flight)."""

from shared.contacts import ContactSync as ContactSync
