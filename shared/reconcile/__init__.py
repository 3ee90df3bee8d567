"""Scheduled reconciliation: compare Ignition with Xero, report what disagrees, re-queue
what the sync owns. ``engine`` is the use case, ``compare`` the pure rules, ``workset`` the on-disk
join, ``report`` the JSON/CSV/HTML writers and ``adapters`` the AWS side."""
