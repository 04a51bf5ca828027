from django.core.management.base import BaseCommand

from school.interop import fields_from_json
from school.interop import model_named
from school.interop import output


class Command(BaseCommand):
    help = "Changes fields of one record (an ordinary save: the record becomes dirty and is synced)."

    def add_arguments(self, parser):
        parser.add_argument("model")
        parser.add_argument("id")
        parser.add_argument("fields")

    def handle(self, *args, **options):
        model = model_named(options["model"])
        record = model.objects.get(id=options["id"])
        for attname, value in fields_from_json(model, options["fields"]).items():
            setattr(record, attname, value)
        record.save()
        output(self, {"id": record.id})
