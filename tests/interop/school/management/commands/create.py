from django.core.management.base import BaseCommand

from school.interop import fields_from_json
from school.interop import model_named
from school.interop import output


class Command(BaseCommand):
    help = "Creates one record of a model from a JSON object of field values; prints its id."

    def add_arguments(self, parser):
        parser.add_argument("model")
        parser.add_argument("fields")

    def handle(self, *args, **options):
        model = model_named(options["model"])
        record = model.objects.create(**fields_from_json(model, options["fields"]))
        output(self, {"id": record.id})
