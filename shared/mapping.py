"""Moved: the client -> contact translation is ``shared/contact_fields.py``. This re-export stays
only while ``shared/backfill.py`` at HEAD imports it from here (its package replacement is in
flight)."""

from shared.contact_fields import client_to_contact as client_to_contact
