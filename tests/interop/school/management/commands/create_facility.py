from django.core.management.base import BaseCommand
from django.db import transaction

from morango.models.certificates import Certificate
from school.interop import output
from school.models import Facility


class Command(BaseCommand):
    help = "Creates a facility: a full-facility root certificate and the facility whose id is the certificate's."

    def add_arguments(self, parser):
        parser.add_argument("--name", default="Riverside Primary")

    def handle(self, *args, **options):
        with transaction.atomic():
            root = Certificate.generate_root_certificate("full-facility")
            facility = Facility.objects.create(dataset_id=root.id, name=options["name"])
        output(self, {"facility_id": facility.id, "certificate_id": root.id})
