from django.core.management.base import BaseCommand
from morango.sync.controller import MorangoProfileController

from school.interop import output


class Command(BaseCommand):
    help = "Serializes the profile's changed records into Morango's store now, as Kolibri does between syncs."

    def handle(self, *args, **options):
        MorangoProfileController("facilitydata").serialize_into_store()
        output(self, {"serialized": True})
