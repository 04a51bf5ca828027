#!/usr/bin/env python
"""The Python Morango 0.8.15 side of the interop tests: a small Django project whose `school` app mirrors the
Rust example's profile (examples/school/entities.rs).

Every command reads its SQLite database from INTEROP_DB and its Morango capabilities from INTEROP_ASYNC,
INTEROP_FSIC_V2 and INTEROP_GZIP ("1" or "0", default "1"). Commands (each prints one JSON object on stdout):

    manage.py migrate                          Django's and Morango's tables
    manage.py create_facility --name NAME       a root certificate and the facility whose id is the certificate's
    manage.py add_user USERNAME PASSWORD [--superuser] [--learner-id ID]
    manage.py seed FACILITY_ID                  classrooms (a tree), learners and lesson progress
    manage.py create MODEL '{"field": value}'   one record; prints its id
    manage.py edit MODEL ID '{"field": value}'  changes fields of a record
    manage.py delete MODEL ID [--hard]          a soft (or hard) deletion
    manage.py dump                              store, record-max counters, DMC and application rows
    manage.py serve [--port 0]                  Morango's HTTP API on 127.0.0.1 (prints "Listening on URL")
    manage.py sync URL FACILITY_ID [--username U --password P] [--user LEARNER_ID] [--no-pull] [--no-push]
                                               Morango's own client: CSR if needed, pull, then push
"""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "interop_project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
